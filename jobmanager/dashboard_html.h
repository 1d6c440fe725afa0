// The web dashboard: one page that polls the REST API.
#pragma once

namespace sluice {

inline constexpr const char* kDashboardHtml = R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sluice</title>
<style>
 body{font-family:system-ui,sans-serif;margin:2em;color:#222;background:#fafafa}
 h1{margin:0 0 .2em}.sub{color:#666;margin-bottom:1.5em}
 .cards{display:flex;gap:1em;margin-bottom:1.5em}
 .card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.8em 1.2em;min-width:8em}
 .card b{display:block;font-size:1.6em}
 table{border-collapse:collapse;width:100%;background:#fff;margin-bottom:1.5em}
 th,td{border-bottom:1px solid #eee;padding:.4em .6em;text-align:left;font-size:.92em}
 th{background:#f0f0f0}.RUNNING{color:#0a6}.FINISHED{color:#06c}.FAILED,.FAILING{color:#c22}
 .CANCELED,.CANCELLING{color:#a60}code{font-size:.9em}button{cursor:pointer}
</style></head><body>
<h1>Sluice</h1><div class="sub">JobManager dashboard &middot; refreshes every 2 s</div>
<div class="cards" id="cards"></div>
<h2>Jobs</h2>
<table><thead><tr><th>Job ID</th><th>Name</th><th>State</th><th>Start</th><th>Duration</th>
<th>Parallelism</th><th>Restarts</th><th></th></tr></thead><tbody id="jobs"></tbody></table>
<h2>TaskManagers</h2>
<table><thead><tr><th>ID</th><th>Address</th><th>Slots</th><th>Free</th><th>Last heartbeat</th></tr></thead>
<tbody id="tms"></tbody></table>
<script>
function esc(s){return String(s).replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]))}
async function cancelJob(id){await fetch('/jobs/'+id+'?mode=cancel',{method:'PATCH',body:''});refresh()}
async function refresh(){
 try{
  const [ov,jobs,tms]=await Promise.all(['/overview','/jobs/overview','/taskmanagers'].map(p=>fetch(p).then(r=>r.json())));
  document.getElementById('cards').innerHTML=[['TaskManagers',ov.taskmanagers],['Slots free',ov['slots-available']+' / '+ov['slots-total']],
   ['Running',ov['jobs-running']],['Finished',ov['jobs-finished']],['Failed',ov['jobs-failed']],['Cancelled',ov['jobs-cancelled']]]
   .map(([k,v])=>'<div class="card">'+k+'<b>'+v+'</b></div>').join('');
  document.getElementById('jobs').innerHTML=jobs.jobs.slice().reverse().map(j=>'<tr><td><code>'+j.jid+'</code></td><td>'+esc(j.name)+
   '</td><td class="'+j.state+'">'+j.state+'</td><td>'+new Date(j['start-time']).toLocaleString()+'</td><td>'+(j.duration/1000).toFixed(1)+
   ' s</td><td>'+j.parallelism+'</td><td>'+j.restarts+'</td><td>'+(['RUNNING','CREATED','RESTARTING'].includes(j.state)?'<button onclick="cancelJob(\''+j.jid+'\')">Cancel</button>':'')+'</td></tr>').join('')||'<tr><td colspan=8>No jobs yet</td></tr>';
  document.getElementById('tms').innerHTML=tms.taskmanagers.map(t=>'<tr><td>'+esc(t.id)+'</td><td>'+esc(t.path)+'</td><td>'+t.slotsNumber+
   '</td><td>'+t.freeSlots+'</td><td>'+t.timeSinceLastHeartbeat+' ms ago</td></tr>').join('')||'<tr><td colspan=5>None registered</td></tr>';
 }catch(e){document.querySelector('.sub').textContent='JobManager unreachable: '+e}
}
refresh();setInterval(refresh,2000);
</script></body></html>
)HTML";

}  // namespace sluice
