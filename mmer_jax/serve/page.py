"""The one page ``mmer serve`` serves at ``/``: upload a file or record from camera and microphone.

Plain HTML + JavaScript, no external assets (the server may run without network). Upload posts
to ``/predict`` (with optional window and hop in seconds, for a timeline); an error clears the
label; recording sends self-contained 2-s MediaRecorder segments over the ``/stream``
WebSocket. Shows the label, a probability bar chart and a rolling timeline.
"""

PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mmer — emotion</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:760px;color:#222}
h1{font-size:1.4em} .row{margin:.8em 0} #label{font-size:2em;font-weight:600;min-height:1.3em}
.bar{display:flex;align-items:center;margin:2px 0} .bar span{width:90px}
.bar div{background:#4a7fd4;height:16px} .bar em{margin-left:6px;font-style:normal;font-size:.85em}
#timeline{display:flex;gap:2px;height:46px;align-items:flex-end;border-bottom:1px solid #aaa}
#timeline div{flex:1;min-width:6px;max-width:24px} #legend span{margin-right:10px;font-size:.85em}
#error{color:#b00020} #meta{color:#666;font-size:.9em} video{max-width:240px;display:none}
</style></head><body>
<h1>Emotion recognition</h1>
<div id="meta">loading model…</div>
<div class="row"><form id="upload"><input type="file" id="file" name="file"
 accept=".wav,.flac,.mp3,.ogg,.mp4,.avi,.webm,.mkv,.mov,.txt">
 <input type="text" id="text" placeholder="transcript (text models)">
 <label>window <input type="number" id="window" min="0.1" max="3600" step="0.1" placeholder="s"
 style="width:5em"></label>
 <label>hop <input type="number" id="hop" min="0.05" max="3600" step="0.05" placeholder="s"
 style="width:5em"></label>
 <button type="submit" id="send">Predict</button></form></div>
<div id="scored" style="color:#666;font-size:.85em"></div>
<div class="row"><button id="rec">Record from camera + microphone</button>
 <button id="stop" disabled>Stop</button> <video id="preview" muted playsinline></video></div>
<div id="error"></div>
<div id="label"></div>
<div id="chart"></div>
<h3>Timeline</h3><div id="timeline"></div><div id="legend"></div>
<script>
const COLORS=["#4a7fd4","#e3a21a","#5aa05a","#d9534f","#8e6cc0","#3bb3b3","#b0703c","#888"];
let classes=[];
const $=id=>document.getElementById(id);
fetch("/model").then(r=>r.json()).then(m=>{classes=m.classes;
 $("meta").textContent=`${m.system} · ${m.corpus} · variant ${m.variant} · modalities `+
  m.modalities.join(", ")+(m.test&&m.test.accuracy!=null?
  ` · test accuracy ${(100*m.test.accuracy).toFixed(1)}%`:"");
 $("legend").innerHTML=classes.map((c,i)=>
  `<span style="color:${COLORS[i%8]}">■ ${c}</span>`).join("");});
function show(res){
 if(res.error){$("error").textContent=res.error;$("label").textContent="";return;}
 $("error").textContent="";
 $("label").textContent=res.label;
 $("scored").textContent=res.scored?"scored: "+res.scored:"";
 $("chart").innerHTML=Object.entries(res.probabilities).map(([c,p])=>
  `<div class="bar"><span>${c}</span><div style="width:${Math.round(p*400)}px"></div>`+
  `<em>${(100*p).toFixed(1)}%</em></div>`).join("");
 for(const w of (res.windows||[])) addTimeline(w);
}
function addTimeline(w){
 const i=classes.indexOf(w.label), p=w.probabilities[w.label];
 const d=document.createElement("div");
 d.style.background=COLORS[i%8]; d.style.height=Math.round(10+36*p)+"px";
 d.title=`${w.label} ${(100*p).toFixed(0)}%`;
 const t=$("timeline"); t.appendChild(d); while(t.children.length>40) t.removeChild(t.firstChild);
}
$("upload").addEventListener("submit",async e=>{e.preventDefault();
 const f=$("file").files[0]; if(!f){$("error").textContent="choose a file first";return;}
 const fd=new FormData(); fd.append("file",f);
 if($("text").value) fd.append("text",$("text").value);
 if($("window").value) fd.append("window",$("window").value);
 if($("hop").value) fd.append("hop",$("hop").value);
 $("label").textContent="…"; $("error").textContent="";
 try{const r=await fetch("/predict",{method:"POST",body:fd});
  let res; try{res=await r.json();}catch(e){res={error:`HTTP ${r.status}`};}
  $("timeline").innerHTML=""; show(res);}
 catch(err){$("label").textContent="";$("error").textContent=String(err);}
});
let ws=null, stream=null, recording=false;
function segment(){
 if(!recording) return;
 const type=MediaRecorder.isTypeSupported("video/webm")?"video/webm":"";
 const rec=new MediaRecorder(stream, type?{mimeType:type}:{}); const parts=[];
 rec.ondataavailable=e=>{if(e.data.size) parts.push(e.data);};
 rec.onstop=async()=>{const blob=new Blob(parts,{type:"video/webm"});
  if(ws&&ws.readyState===1&&blob.size) ws.send(await blob.arrayBuffer()); segment();};
 rec.start(); setTimeout(()=>rec.state!=="inactive"&&rec.stop(),2000);
}
$("rec").onclick=async()=>{
 try{stream=await navigator.mediaDevices.getUserMedia({audio:true,video:true});}
 catch(err){$("error").textContent="camera/microphone not available: "+err;return;}
 $("preview").srcObject=stream; $("preview").style.display="block"; $("preview").play();
 ws=new WebSocket((location.protocol==="https:"?"wss://":"ws://")+location.host+"/stream");
 ws.onmessage=e=>{const r=JSON.parse(e.data); if(r.ok) return; show(r);};
 ws.onopen=()=>{ws.send(JSON.stringify({ext:".webm",text:$("text").value||null}));
  recording=true; segment();};
 $("rec").disabled=true; $("stop").disabled=false;
};
$("stop").onclick=()=>{recording=false; if(stream) stream.getTracks().forEach(t=>t.stop());
 setTimeout(()=>ws&&ws.close(),2500); $("rec").disabled=false; $("stop").disabled=true;};
</script></body></html>
"""
