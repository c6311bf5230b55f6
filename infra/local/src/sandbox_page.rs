//! `GET /sandbox`: each demo debtor's WhatsApp chat as the debtor sees it on the phone, with a
//! box to answer as the debtor. This is how a newcomer sees cobro work without a Meta account.

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

use cobro::http::Problem;

use crate::{demo, LocalStack};

pub fn router(stack: Arc<LocalStack>) -> Router {
    Router::new()
        .route("/sandbox", get(page))
        .route("/_local/sandbox/chats", get(chats))
        .with_state(stack)
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// Every debtor of the demo tenant with their accounts and conversation, for the page.
async fn chats(State(s): State<Arc<LocalStack>>) -> Result<Response, Problem> {
    let tenant = demo::tenant_id();
    // The chatbot's buttons, by the message id the sandbox gave each message it sent.
    let choices: std::collections::HashMap<String, cobro::ports::ChoiceSet> = s
        .channel
        .sent()
        .into_iter()
        .filter_map(|(id, m)| m.choices.map(|c| (id, c)))
        .collect();
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let (ids, next) = s.store.debtor_ids(&tenant, 100, cursor).await?;
        for id in ids {
            let Some(debtor) = s.store.debtor(&tenant, &id).await? else {
                continue;
            };
            let accounts = s.store.accounts_of_debtor(&tenant, &id).await?;
            let messages: Vec<serde_json::Value> = s
                .store
                .conversation(&tenant, &id, 100)
                .await?
                .into_iter()
                .map(|m| {
                    let c = choices.get(&m.message_id);
                    let mut v = json!(m);
                    v["choices"] = json!(c.map(|c| &c.options));
                    v
                })
                .collect();
            let (chat, _) = s.store.chat_record(&tenant, &id).await?;
            out.push(json!({
                "owner": chat.state.mode,
                "vulnerable": chat.state.vulnerable,
                "debtor": debtor,
                "accounts": accounts.iter().map(|a| json!({
                    "id": a.id, "balance": a.balance().display(), "due_date": a.due_date, "status": a.status,
                })).collect::<Vec<_>>(),
                "messages": messages,
            }));
        }
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(
        Json(json!({ "now": cobro::ports::Clock::now(s.clock.as_ref()), "chats": out }))
            .into_response(),
    )
}

const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cobro sandbox — the debtors' phones</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 0; background: #eae6df; color: #111; }
  header { background: #075e54; color: #fff; padding: 12px 20px; display: flex; gap: 16px; align-items: center; flex-wrap: wrap; }
  header h1 { font-size: 18px; margin: 0; }
  header button { background: #25d366; border: 0; color: #fff; padding: 6px 12px; border-radius: 6px; cursor: pointer; }
  header small { opacity: .85; }
  main { display: flex; flex-wrap: wrap; gap: 16px; padding: 16px; }
  .phone { width: 320px; height: 560px; background: #efeae2; border: 8px solid #222; border-radius: 28px; display: flex; flex-direction: column; overflow: hidden; }
  .top { background: #075e54; color: #fff; padding: 10px 12px; }
  .top b { display: block; }
  .top span { font-size: 12px; opacity: .85; }
  .msgs { flex: 1; overflow-y: auto; padding: 8px; display: flex; flex-direction: column; gap: 6px; }
  .m { max-width: 80%; padding: 6px 8px; border-radius: 8px; font-size: 14px; line-height: 1.3; box-shadow: 0 1px 1px rgba(0,0,0,.1); white-space: pre-wrap; }
  .m time { display: block; font-size: 10px; color: #667; text-align: right; margin-top: 2px; }
  .outbound { align-self: flex-start; background: #fff; }
  .inbound { align-self: flex-end; background: #d9fdd3; }
  .choices { display: flex; flex-wrap: wrap; gap: 4px; margin-top: 4px; }
  .choices button { border: 1px solid #25d366; background: #fff; color: #075e54; border-radius: 12px; padding: 3px 8px; font-size: 12px; cursor: pointer; }
  .owner { font-size: 11px; background: #f5c542; color: #111; border-radius: 6px; padding: 1px 5px; }
  .empty { color: #667; font-size: 13px; text-align: center; margin-top: 40%; }
  form { display: flex; gap: 6px; padding: 8px; background: #f0f0f0; }
  form input { flex: 1; border: 0; border-radius: 16px; padding: 8px 12px; }
  form button { border: 0; background: #075e54; color: #fff; border-radius: 16px; padding: 0 12px; cursor: pointer; }
</style>
</head>
<body>
<header>
  <h1>cobro sandbox</h1>
  <small id="now"></small>
  <button id="tick" title="Run the reminders schedule now and deliver what it queues">Run reminders now</button>
  <button id="day" title="Move the local clock one day ahead, then run reminders">+1 day</button>
  <small>Write "hola" to any debtor to meet the chatbot; the identity check's answer is 1234.</small>
</header>
<main id="phones"></main>
<script>
const phones = document.getElementById('phones');
const fmt = (t) => new Date(t).toLocaleString();
const drafts = {};
async function post(url, body) {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body ? JSON.stringify(body) : '{}' });
  if (!r.ok) alert((await r.json()).detail || r.statusText);
}
async function runReminders() { await post('/_local/tick'); await post('/_local/drain'); await load(); }
document.getElementById('tick').onclick = runReminders;
document.getElementById('day').onclick = async () => { await post('/_local/clock', { advance: '24h' }); await runReminders(); };
function render(data) {
  document.getElementById('now').textContent = 'local clock: ' + fmt(data.now);
  phones.replaceChildren(...data.chats.map(c => {
    const d = c.debtor;
    const el = document.createElement('section');
    el.className = 'phone';
    const accounts = c.accounts.map(a => `${a.id} · ${a.balance} · ${a.status}`).join('<br>');
    el.innerHTML = `<div class="top"><b></b><span></span><br><span>${accounts}</span></div><div class="msgs"></div>
      <form><button type="button" class="attach" title="Send a photo of a payment receipt">📎</button><input placeholder="Answer as the debtor…" autocomplete="off"><button>Send</button></form>`;
    el.querySelector('b').textContent = d.name;
    if (c.owner && c.owner.owner === 'agent') {
      const tag = document.createElement('span');
      tag.className = 'owner';
      tag.textContent = 'with a person' + (c.vulnerable ? ' · ' + c.vulnerable : '');
      el.querySelector('b').append(' ', tag);
    }
    el.querySelector('span').textContent = `${d.phone} · ${d.time_zone} · ${d.language}`;
    const box = el.querySelector('.msgs');
    if (!c.messages.length) box.innerHTML = '<div class="empty">No messages yet</div>';
    for (const m of c.messages) {
      const b = document.createElement('div');
      b.className = 'm ' + m.direction;
      b.textContent = m.text;
      const t = document.createElement('time');
      t.textContent = fmt(m.at) + (m.direction === 'outbound' ? ' · ' + m.channel : '');
      b.appendChild(t);
      if (m.choices) {
        const row = document.createElement('div');
        row.className = 'choices';
        for (const o of m.choices) {
          const btn = document.createElement('button');
          btn.textContent = o.title;
          if (o.description) btn.title = o.description;
          btn.onclick = async () => { await post('/_local/inbound', { from: d.phone, choice: { id: o.id, title: o.title } }); await load(); };
          row.appendChild(btn);
        }
        b.appendChild(row);
      }
      box.appendChild(b);
    }
    box.scrollTop = box.scrollHeight;
    const input = el.querySelector('input');
    input.value = drafts[d.id] || '';
    input.oninput = () => { drafts[d.id] = input.value; };
    el.querySelector('.attach').onclick = async () => {
      await post('/_local/inbound', { from: d.phone, media: 'image' });
      await load();
    };
    el.querySelector('form').onsubmit = async (e) => {
      e.preventDefault();
      if (!input.value.trim()) return;
      await post('/_local/inbound', { from: d.phone, text: input.value });
      drafts[d.id] = '';
      await load();
    };
    return el;
  }));
}
async function load() {
  const r = await fetch('/_local/sandbox/chats');
  render(await r.json());
}
load();
setInterval(() => { if (!(document.activeElement && document.activeElement.tagName === 'INPUT')) load(); }, 3000);
</script>
</body>
</html>
"##;
