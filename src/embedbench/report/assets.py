"""The leaderboard page's inline CSS and script (no network access: the page loads nothing)."""

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5rem;color:#1b1b1b}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}
.controls{display:flex;gap:1.5rem;margin:1rem 0}.controls label{font-weight:600}
select{font:inherit;margin-left:.4rem}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d0d0d0;padding:.3rem .5rem;vertical-align:top}
thead th{background:#f2f2f2;position:sticky;top:0}
th button{font:inherit;font-weight:600;background:none;border:0;cursor:pointer;padding:0}
th[aria-sort=ascending] button::after{content:" \\25B2"}th[aria-sort=descending] button::after{content:" \\25BC"}
td.num{text-align:right;white-space:nowrap}td.blank{color:#888}
.ci{display:block;font-size:.8em;color:#555}
strong.best{color:#0b5d1e}
button.toggle{font:inherit;background:none;border:1px solid #bbb;border-radius:3px;cursor:pointer;margin-right:.4rem}
tr.details td{background:#fafafa}tr.details table{font-size:.85em}
.flag{color:#a15c00}
.reported{border-left:4px solid #888;padding-left:1rem}
#js-errors{background:#fdd;border:1px solid #c00;padding:.5rem}
code{font-size:.9em}
"""

# Installed first, so a failing script shows a banner (and tests can read data-js-errors).
ERROR_HOOK = """
window.addEventListener('error',function(e){var r=document.documentElement;
var m=(r.dataset.jsErrors||'')+(e.message||'error')+'\\n';r.dataset.jsErrors=m;
var b=document.getElementById('js-errors');if(b){b.hidden=false;b.textContent='Script error: '+m;}});
"""

SCRIPT = r"""
(function(){
'use strict';
var table=document.getElementById('leaderboard');
var heads=Array.prototype.slice.call(table.tHead.rows[0].cells);
var suiteSel=document.getElementById('filter-suite'),precSel=document.getElementById('filter-precision');
var state={sort:'',dir:'',suite:'',precision:''};
function entries(){return Array.prototype.slice.call(table.tBodies);}
function cellValue(body,idx,type){
  var c=body.rows[0].cells[idx];if(!c)return null;var v=c.getAttribute('data-value');
  if(v===null||v==='')return null;return type==='num'?parseFloat(v):v.toLowerCase();}
function sortBy(key,dir){
  var idx=-1;heads.forEach(function(h,i){if(h.dataset.key===key)idx=i;});
  if(idx<0)return;var type=heads[idx].dataset.type;
  var list=entries();
  list.sort(function(a,b){var x=cellValue(a,idx,type),y=cellValue(b,idx,type);
    if(x===null&&y===null)return Number(a.dataset.order)-Number(b.dataset.order);
    if(x===null)return 1;if(y===null)return -1;
    var c=x<y?-1:x>y?1:0;if(c===0)return Number(a.dataset.order)-Number(b.dataset.order);
    return dir==='desc'?-c:c;});
  list.forEach(function(b){table.appendChild(b);});
  heads.forEach(function(h,i){if(i===idx)h.setAttribute('aria-sort',dir==='desc'?'descending':'ascending');
    else h.removeAttribute('aria-sort');});
  state.sort=key;state.dir=dir;}
function applyFilters(){
  entries().forEach(function(b){var suites=JSON.parse(b.dataset.suites||'[]');
    var show=(!state.suite||suites.indexOf(state.suite)>=0)&&(!state.precision||b.dataset.precision===state.precision);
    b.hidden=!show;});
  Array.prototype.forEach.call(table.querySelectorAll('[data-suite]'),function(c){
    c.hidden=!!state.suite&&c.dataset.suite!==''&&c.dataset.suite!==state.suite;});
  suiteSel.value=state.suite;precSel.value=state.precision;}
function writeHash(){
  var parts=[];if(state.sort)parts.push('sort='+encodeURIComponent(state.sort)+':'+state.dir);
  if(state.suite)parts.push('suite='+encodeURIComponent(state.suite));
  if(state.precision)parts.push('precision='+encodeURIComponent(state.precision));
  if(history.replaceState)history.replaceState(null,'',parts.length?'#'+parts.join('&'):location.pathname+location.search);}
function readHash(){
  location.hash.replace(/^#/,'').split('&').forEach(function(p){
    var i=p.indexOf('=');if(i<0)return;var k=p.slice(0,i),v=decodeURIComponent(p.slice(i+1));
    if(k==='sort'){var j=v.lastIndexOf(':');state.sort=j<0?v:v.slice(0,j);state.dir=j<0?'desc':v.slice(j+1);}
    else if(k==='suite'||k==='precision')state[k]=v;});}
heads.forEach(function(h){var b=h.querySelector('button');if(!b)return;
  b.addEventListener('click',function(){var key=h.dataset.key,dir;
    if(state.sort===key)dir=state.dir==='desc'?'asc':'desc';else dir=h.dataset.type==='num'?'desc':'asc';
    sortBy(key,dir);writeHash();});});
suiteSel.addEventListener('change',function(){state.suite=suiteSel.value;applyFilters();writeHash();});
precSel.addEventListener('change',function(){state.precision=precSel.value;applyFilters();writeHash();});
Array.prototype.forEach.call(table.querySelectorAll('button.toggle'),function(b){
  b.addEventListener('click',function(){var d=document.getElementById(b.getAttribute('aria-controls'));
    var open=b.getAttribute('aria-expanded')!=='true';d.hidden=!open;
    b.setAttribute('aria-expanded',String(open));b.textContent=open?'\u25BE':'\u25B8';});});
readHash();if(state.sort)sortBy(state.sort,state.dir||'desc');applyFilters();
document.documentElement.dataset.ready='1';
})();
"""
