//! Scripted conversations with the chatbot, end to end on the local stack: the debtor's
//! message in through the signed webhook, the bot's answer out through the sender to a local
//! Graph API server, in Spanish, Portuguese and English (demo debtors María, João and John).

use reqwest::StatusCode;
use serde_json::{json, Value};

use cobro_local::demo;
use cobro_tests::fake_graph::FakeGraph;
use cobro_tests::local::LocalApi;

/// (debtor id, phone, account id) of the demo debtors who speak each language.
const PEOPLE: [(&str, &str, &str, &str); 3] = [
    ("es", "cl-maria", "+56912340001", "CL-1001"),
    ("pt", "br-joao", "+5511987650002", "BR-2002"),
    ("en", "us-john", "+14155550004", "US-4004"),
];

/// The local stack over HTTP, sending WhatsApp to a local Graph API server.
struct Stack {
    api: LocalApi,
    graph: FakeGraph,
    /// How many of the Graph server's sends `replies` has returned.
    seen: std::sync::Mutex<usize>,
}

impl std::ops::Deref for Stack {
    type Target = LocalApi;
    fn deref(&self) -> &LocalApi {
        &self.api
    }
}

impl Stack {
    async fn start() -> Self {
        let graph = FakeGraph::start().await;
        let api = LocalApi::start_with(|settings| {
            settings.graph_url = Some(graph.base_url.clone());
            settings.graph_token = cobro_tests::fake_graph::TOKEN.into();
            // The demo is loaded a minute before the tests' clock (below), so its due dates
            // and consents are the same whatever day the tests run, and older than what
            // debtors say.
            settings.start_at = Some("2026-11-25T15:59:00Z".parse().unwrap());
        })
        .await;
        let s = Self {
            api,
            graph,
            seen: std::sync::Mutex::new(0),
        };
        // A Wednesday, midday in the Americas.
        s.set_clock("2026-11-25T16:00:00Z").await;
        s
    }

    /// What reached the debtor's phone since the last look: each message's text, with the
    /// titles of its buttons or rows.
    fn replies(&self) -> Vec<String> {
        let sends = self.graph.sends();
        let mut seen = self.seen.lock().unwrap();
        let new: Vec<String> = sends[*seen..]
            .iter()
            .map(|(_, body)| {
                if let Some(t) = body["text"]["body"].as_str() {
                    return t.to_string();
                }
                let i = &body["interactive"];
                let mut out = i["body"]["text"].as_str().unwrap_or_default().to_string();
                for b in i["action"]["buttons"].as_array().into_iter().flatten() {
                    out.push_str(&format!(" [{}]", b["reply"]["title"].as_str().unwrap()));
                }
                for section in i["action"]["sections"].as_array().into_iter().flatten() {
                    for r in section["rows"].as_array().into_iter().flatten() {
                        out.push_str(&format!(" [{}]", r["title"].as_str().unwrap()));
                    }
                }
                out
            })
            .collect();
        *seen = sends.len();
        new
    }

    async fn say(&self, phone: &str, text: &str) -> String {
        self.ok(
            "POST",
            "/_local/inbound",
            Some(json!({ "from": phone, "text": text })),
        )
        .await;
        self.stack.drain().await.unwrap();
        self.replies().join("\n")
    }

    async fn tap(&self, phone: &str, id: &str) -> String {
        self.ok(
            "POST",
            "/_local/inbound",
            Some(json!({ "from": phone, "choice": { "id": id, "title": id } })),
        )
        .await;
        self.stack.drain().await.unwrap();
        self.replies().join("\n")
    }

    /// The debtor says, in `lang`, that they do not want to live; the bot's answer.
    async fn says_self_harm(&self, lang: &str, phone: &str) -> String {
        let text = words(
            lang,
            "ya no quiero vivir",
            "quero morrer",
            "I want to end my life",
        );
        self.say(phone, text).await
    }

    /// An agent's reply in `debtor`'s conversation: the status and the body.
    async fn agent_reply(&self, debtor: &str, text: &str, agent: &str) -> (StatusCode, Value) {
        let path = format!("/v1/conversations/{debtor}/replies");
        let body = json!({ "text": text, "agent": agent });
        self.call("POST", &path, Some(body)).await
    }

    /// From the menu, the debtor sets the preference `what` to `choice`; the bot's answer.
    async fn choose_preference(&self, phone: &str, what: &str, choice: &str) -> String {
        self.tap(phone, "menu:prefs").await;
        self.tap(phone, &format!("prefs:{what}")).await;
        self.tap(phone, choice).await
    }

    /// The debtor as the CRM API shows it.
    async fn debtor(&self, id: &str) -> Value {
        self.ok("GET", &format!("/v1/debtors/{id}"), None).await
    }

    async fn account(&self, id: &str) -> Value {
        self.ok("GET", &format!("/v1/accounts/{id}"), None).await
    }

    async fn verify(&self, phone: &str) {
        self.say(phone, "saldo").await;
        self.say(phone, demo::DEMO_ID_LAST4).await;
    }
}

/// What the bot says, in `lang`, when it asks for the last digits of the debtor's id.
fn asks_for_the_id_digits(lang: &str) -> &'static str {
    words(
        lang,
        "4 últimos dígitos",
        "4 últimos dígitos",
        "last 4 digits",
    )
}

fn words(lang: &str, es: &'static str, pt: &'static str, en: &'static str) -> &'static str {
    match lang {
        "es" => es,
        "pt" => pt,
        _ => en,
    }
}

#[tokio::test]
async fn the_balance_is_shown_only_after_the_identity_check() {
    let s = Stack::start().await;
    for (lang, _, phone, _) in PEOPLE {
        let menu = s.say(phone, words(lang, "Hola", "Oi", "Hello")).await;
        assert!(
            menu.contains(words(
                lang,
                "[Ver mi saldo]",
                "[Ver meu saldo]",
                "[See my balance]"
            )),
            "{menu}"
        );
        let asked = s.tap(phone, "menu:balance").await;
        assert!(asked.contains(asks_for_the_id_digits(lang)), "{asked}");
        assert!(
            !asked.chars().any(|c| c.is_ascii_digit() && c != '4'),
            "nothing about the debt: {asked}"
        );
        let shown = s.say(phone, demo::DEMO_ID_LAST4).await;
        assert!(
            shown.contains(words(lang, "saldo", "saldo", "balance")),
            "{shown}"
        );
        assert!(shown.contains(words(lang, "CLP", "BRL", "USD")), "{shown}");
    }
}

#[tokio::test]
async fn three_wrong_answers_lock_the_check() {
    let s = Stack::start().await;
    for (lang, _, phone, _) in PEOPLE {
        s.say(phone, words(lang, "saldo", "saldo", "balance")).await;
        s.say(phone, "0000").await;
        s.say(phone, "0001").await;
        let locked = s.say(phone, "0002").await;
        assert!(locked.contains("30"), "{locked}");
        let still = s.say(phone, demo::DEMO_ID_LAST4).await;
        assert!(!still.contains(words(lang, "CLP", "BRL", "USD")), "{still}");
    }
}

#[tokio::test]
async fn a_payment_link_on_the_tenant_pay_page() {
    let s = Stack::start().await;
    for (_, _, phone, _) in PEOPLE {
        s.verify(phone).await;
        let link = s.tap(phone, "menu:pay").await;
        assert!(link.contains("http"), "{link}");
    }
}

#[tokio::test]
async fn a_plan_is_offered_and_accepted_in_the_chat() {
    let s = Stack::start().await;
    for (lang, _, phone, account) in PEOPLE {
        s.verify(phone).await;
        let offers = s
            .say(
                phone,
                words(
                    lang,
                    "quiero un plan de pagos",
                    "quero parcelar",
                    "payment plan",
                ),
            )
            .await;
        assert!(
            offers.contains(words(lang, "[3 cuotas]", "[3 parcelas]", "[3 instalments]")),
            "{offers}"
        );
        let done = s.tap(phone, "plan:0").await;
        assert!(
            done.contains(words(lang, "3 cuotas", "3 parcelas", "3 instalments")),
            "{done}"
        );
        let a = s.account(account).await;
        assert!(
            !a["account"]["plan"].is_null() || !a["plan"].is_null(),
            "{a}"
        );
    }
}

#[tokio::test]
async fn a_promise_to_pay_tomorrow() {
    let s = Stack::start().await;
    for (lang, _, phone, account) in PEOPLE {
        s.verify(phone).await;
        s.tap(phone, "menu:promise").await;
        let made = s
            .say(phone, words(lang, "mañana", "amanhã", "tomorrow"))
            .await;
        assert!(
            made.contains(words(lang, "compromiso", "compromisso", "promise")),
            "{made}"
        );
        let a = s.account(account).await;
        let text = a.to_string();
        assert!(text.contains("\"made_by\":\"debtor\""), "{text}");
    }
}

#[tokio::test]
async fn a_pause_and_a_dispute_stop_collection() {
    let s = Stack::start().await;
    for (lang, _, phone, account) in PEOPLE {
        s.say(
            phone,
            words(
                lang,
                "necesito una pausa",
                "preciso de uma pausa",
                "I need a pause",
            ),
        )
        .await;
        let paused = s.tap(phone, "pause:income").await;
        assert!(!paused.is_empty());
        let a = s.account(account).await;
        assert!(a["account"]["holds"]["paused_until"].is_string(), "{a}");
        assert_eq!(a["collecting"], false, "{a}");
        s.verify(phone).await;
        s.tap(phone, "menu:dispute").await;
        let opened = s.tap(phone, "dispute:not_mine").await;
        assert!(opened.contains(account), "{opened}");
        let a = s.account(account).await.to_string();
        assert!(a.contains("\"dispute_open\":true"), "{a}");
    }
}

#[tokio::test]
async fn opting_out_is_confirmed_then_noticed_once_then_the_bot_says_nothing_until_opt_in() {
    let s = Stack::start().await;
    for (lang, _, phone, _) in PEOPLE {
        s.set_clock("2026-11-25T16:00:00Z").await;
        let opt_in = words(lang, "ALTA", "VOLTAR", "START");
        let bye = s.say(phone, words(lang, "BAJA", "SAIR", "STOP")).await;
        assert!(bye.contains("WhatsApp"), "{bye}");
        // Writing again, the debtor is told once that they opted out and how to come back,
        // with nothing about the debt.
        let notice = s.say(phone, words(lang, "saldo", "saldo", "balance")).await;
        assert!(notice.contains(opt_in), "{notice}");
        assert!(
            !notice.contains(words(lang, "CLP", "BRL", "USD")),
            "{notice}"
        );
        let nothing = s.say(phone, words(lang, "hola", "oi", "hello")).await;
        assert_eq!(nothing, "", "one notice per opt-out");
        let back = s.say(phone, opt_in).await;
        assert!(back.contains("WhatsApp"), "{back}");
        // A new opt-out (a minute later: consents of one instant do not order) is a new
        // period: one notice again.
        s.set_clock("2026-11-25T16:01:00Z").await;
        s.say(phone, words(lang, "BAJA", "SAIR", "STOP")).await;
        let again = s.say(phone, words(lang, "hola", "oi", "hello")).await;
        assert!(again.contains(opt_in), "{again}");
    }
}

/// Opted out a month ago, the debtor writes that they do not want to live: the crisis line
/// reaches them all the same (safety outranks the opt-out; they wrote first).
#[tokio::test]
async fn a_debtor_who_opted_out_still_gets_the_crisis_line() {
    let s = Stack::start().await;
    for (lang, _, phone, _) in PEOPLE {
        s.say(phone, words(lang, "BAJA", "SAIR", "STOP")).await;
    }
    s.set_clock("2026-12-28T16:00:00Z").await;
    for (lang, _, phone, _) in PEOPLE {
        let line = s.says_self_harm(lang, phone).await;
        assert!(line.contains(words(lang, "*4141", "188", "988")), "{line}");
    }
    // The person the conversation went to can answer them too: care, not collection.
    let (status, body) = s
        .agent_reply("cl-maria", "Hola María, soy Carla. Estoy aquí.", "carla")
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    s.stack.drain().await.unwrap();
    assert_eq!(
        s.replies(),
        vec!["Hola María, soy Carla. Estoy aquí.".to_string()]
    );
    // She opts out again, after the care began: the person's replies stop too.
    s.set_clock("2026-12-29T16:00:00Z").await;
    let confirmed = s.say("+56912340001", "BAJA").await;
    assert!(!confirmed.is_empty(), "the opt-out is confirmed");
    let (status, body) = s.agent_reply("cl-maria", "¿Seguimos?", "carla").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

/// A person cannot write to a debtor who opted out in a conversation handed over for anything
/// but self-harm; the debtor who writes is told once how to opt in.
#[tokio::test]
async fn an_agent_cannot_write_to_an_opted_out_debtor_outside_care() {
    let s = Stack::start().await;
    let maria = PEOPLE[0].2;
    s.say(maria, "quiero hablar con una persona").await;
    s.say(maria, "BAJA").await;
    let notice = s.say(maria, "hola?").await;
    assert!(notice.contains("ALTA"), "{notice}");
    let (status, body) = s.agent_reply("cl-maria", "Hola", "carla").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.to_string().contains("opted-out"), "{body}");
}

/// A debtor whose CRM language is Spanish writes in English: the payment link is in English
/// like the rest of the conversation.
#[tokio::test]
async fn the_payment_link_is_in_the_conversations_language() {
    let s = Stack::start().await;
    let maria = PEOPLE[0].2;
    let asked = s.say(maria, "hello, what is my balance please").await;
    assert!(!asked.is_empty());
    s.say(maria, demo::DEMO_ID_LAST4).await;
    let link = s.tap(maria, "menu:pay").await;
    assert!(link.contains("You can pay"), "{link}");
}

#[tokio::test]
async fn preferred_channel_and_hours_are_kept_on_the_debtor() {
    let s = Stack::start().await;
    for (_, debtor, phone, _) in PEOPLE {
        let done = s.choose_preference(phone, "hours", "hours:morning").await;
        assert!(done.contains("09:00"), "{done}");
        let d = s.debtor(debtor).await.to_string();
        assert!(d.contains("09:00-12:00"), "{d}");
    }
}

#[tokio::test]
async fn a_person_takes_over_replies_and_hands_back() {
    let s = Stack::start().await;
    for (lang, debtor, phone, _) in PEOPLE {
        let handed = s
            .say(
                phone,
                words(
                    lang,
                    "quiero hablar con una persona",
                    "falar com atendente",
                    "talk to a person",
                ),
            )
            .await;
        assert!(!handed.is_empty());
        let tray = s.ok("GET", "/v1/handoffs", None).await;
        assert!(tray.to_string().contains(debtor), "{tray}");
        // The bot is silent while a person owns the conversation.
        assert_eq!(
            s.say(phone, words(lang, "saldo", "saldo", "balance")).await,
            ""
        );
        let (status, _) = s
            .call(
                "POST",
                &format!("/v1/conversations/{debtor}/replies"),
                Some(json!({ "text": "Hola, soy Carla", "agent": "carla" })),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        s.stack.drain().await.unwrap();
        assert_eq!(s.replies(), vec!["Hola, soy Carla".to_string()]);
        let convo = s
            .ok("GET", &format!("/v1/conversations/{debtor}"), None)
            .await;
        assert_eq!(convo["owner"]["owner"], "agent", "{convo}");
        s.ok("POST", &format!("/v1/conversations/{debtor}/release"), None)
            .await;
        let menu = s.say(phone, words(lang, "hola", "oi", "hello")).await;
        assert!(!menu.is_empty());
    }
    // An agent cannot write into a conversation the bot owns.
    let (status, body) = s.agent_reply("cl-maria", "x", "a").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

#[tokio::test]
async fn signs_of_vulnerability_pause_flag_and_reach_a_person() {
    let s = Stack::start().await;
    for (lang, debtor, phone, account) in PEOPLE {
        let care = s
            .say(
                phone,
                words(lang, "perdí mi trabajo", "fui demitido", "I lost my job"),
            )
            .await;
        assert!(
            care.contains(words(lang, "Lamentamos", "Sentimos", "sorry")),
            "{care}"
        );
        let a = s.account(account).await.to_string();
        assert!(a.contains("vulnerability"), "{a}");
        let convo = s
            .ok("GET", &format!("/v1/conversations/{debtor}"), None)
            .await;
        assert_eq!(convo["vulnerability"], "unemployment");
        // Self-harm gets the crisis line of the debtor's country, even with a person in charge.
        let line = s.says_self_harm(lang, phone).await;
        assert!(line.contains(words(lang, "*4141", "188", "988")), "{line}");
    }
}

#[tokio::test]
async fn the_sandbox_page_shows_the_bots_buttons_to_tap() {
    let api = LocalApi::start().await;
    let (base, http) = (&api.base, &api.http);
    let post = |body: Value| {
        http.post(format!("{base}/_local/inbound"))
            .json(&body)
            .send()
    };
    assert!(post(json!({ "from": "+56912340001", "text": "hola" }))
        .await
        .unwrap()
        .status()
        .is_success());
    let chats: Value = http
        .get(format!("{base}/_local/sandbox/chats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let maria = chats["chats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["debtor"]["id"] == "cl-maria")
        .unwrap();
    let last = maria["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["direction"], "outbound", "{maria}");
    assert_eq!(last["choices"][0]["id"], "menu:balance", "{last}");
    // Tapping one is a button reply through the webhook, as on a phone.
    assert!(post(json!({ "from": "+56912340001", "choice": { "id": "menu:balance", "title": "Ver mi saldo" } }))
        .await
        .unwrap()
        .status()
        .is_success());
    let page = http
        .get(format!("{base}/sandbox"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("choices") && page.contains("1234"));
}

impl Stack {
    /// A signed webhook delivery straight to `/webhooks/whatsapp`, as Meta sends it.
    async fn deliver(&self, phone: &str, message: Value) {
        let wa_id = phone.trim_start_matches('+');
        let mut message = message;
        message["from"] = json!(wa_id);
        let payload = json!({
            "object": "whatsapp_business_account",
            "entry": [{ "id": "waba", "changes": [{ "field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": { "display_phone_number": demo::DISPLAY_NUMBER, "phone_number_id": demo::PHONE_NUMBER_ID },
                "contacts": [{ "profile": { "name": "" }, "wa_id": wa_id }],
                "messages": [message]
            }}]}]
        });
        let raw = serde_json::to_vec(&payload).unwrap();
        let sig = cobro::whatsapp::signature::sign(self.stack.settings.app_secret.as_bytes(), &raw);
        let status = self
            .http
            .post(format!("{}/webhooks/whatsapp", self.base))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", sig)
            .body(raw)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::OK);
        self.stack.drain().await.unwrap();
    }
}

#[tokio::test]
async fn a_receipt_photo_is_acknowledged_and_passed_on() {
    let s = Stack::start().await;
    for (n, (lang, _, phone, _)) in PEOPLE.into_iter().enumerate() {
        let now = cobro::ports::Clock::now(s.stack.clock.as_ref());
        s.deliver(
            phone,
            json!({ "id": format!("wamid.receipt{n}"), "timestamp": now.as_second().to_string(),
                    "type": "image",
                    "image": { "id": format!("media-{n}"), "mime_type": "image/jpeg", "sha256": "x" } }),
        )
        .await;
        let ack = s.replies().join("\n");
        assert!(
            ack.contains(words(lang, "comprobante", "comprovante", "receipt")),
            "{ack}"
        );
    }
}

#[tokio::test]
async fn a_preferred_channel_is_kept_and_a_tenant_rule_sends_long_overdue_debtors_to_a_person() {
    let s = Stack::start().await;
    for (_, debtor, phone, _) in PEOPLE {
        let done = s.choose_preference(phone, "channel", "channel:sms").await;
        assert!(done.contains("SMS"), "{done}");
        let d = s.debtor(debtor).await.to_string();
        assert!(d.contains("\"channel\":\"sms\""), "{d}");
    }
    // The seeds' rule: debtors 10 or more days past due reach a person when they write.
    let tenant_id = demo::tenant_id();
    let mut tenant = s.stack.store.tenant(&tenant_id).await.unwrap().unwrap();
    tenant.chat.handoff_days_past_due = Some(10);
    s.stack.store.put_tenant(&tenant).await.unwrap();
    let overdue = "+14155550004"; // John: 15 days past due
    s.say(overdue, "hello").await;
    let tray = s.ok("GET", "/v1/handoffs", None).await.to_string();
    assert!(
        tray.contains("days_past_due") && tray.contains("us-john"),
        "{tray}"
    );
    // María's account is not yet due: the bot answers her.
    let menu = s.say("+56912340001", "hola").await;
    assert!(menu.contains("[Ver mi saldo]"), "{menu}");
}

#[tokio::test]
async fn only_agent_keys_work_the_tray() {
    use cobro::repo::Scope;
    let s = Stack::start().await;
    let now = cobro::ports::Clock::now(s.stack.clock.as_ref());
    let reader = s
        .stack
        .store
        .issue_api_key(&demo::tenant_id(), "reader", &[Scope::AccountsRead], now)
        .await
        .unwrap();
    let agent = s
        .stack
        .store
        .issue_api_key(&demo::tenant_id(), "agents", &[Scope::Agent], now)
        .await
        .unwrap();
    let get = |key: String| {
        s.http
            .get(format!("{}/v1/handoffs", s.base))
            .header("authorization", format!("Bearer {key}"))
            .send()
    };
    assert_eq!(
        get(reader.secret).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(get(agent.secret).await.unwrap().status(), StatusCode::OK);
}

/// The first message of one of Meta's payloads (../shared/fixtures), as a new message now.
fn fixture_message(name: &str, id: &str, at: jiff::Timestamp) -> Value {
    let delivery: Value =
        serde_json::from_slice(&crate::inbound::webhook_fixture(name)).expect("JSON");
    let mut message = delivery["entry"][0]["changes"][0]["value"]["messages"][0].clone();
    message["id"] = json!(id);
    message["timestamp"] = json!(at.as_second().to_string());
    message
}

impl Stack {
    /// `name`'s message from `phone`, as a new message each time.
    async fn deliver_fixture(&self, phone: &str, name: &str) -> Vec<String> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let at = cobro::ports::Clock::now(self.stack.clock.as_ref());
        let id = format!("wamid.fixture{n}");
        self.deliver(phone, fixture_message(name, &id, at)).await;
        self.replies()
    }
}

#[tokio::test]
async fn reactions_places_and_unsupported_messages_spend_no_identity_attempt() {
    let s = Stack::start().await;
    for (lang, _, phone, _) in PEOPLE {
        s.tap(phone, "menu:balance").await;
        // More reactions than the check allows attempts: not one is an answer.
        for _ in 0..4 {
            let said = s.deliver_fixture(phone, "reaction_message.json").await;
            assert!(said.is_empty(), "{said:?}");
        }
        let said = s
            .deliver_fixture(phone, "value_errors_131000_with_message.json")
            .await;
        assert!(said.is_empty(), "an unsupported message: {said:?}");
        // A place: the bot says once what it reads.
        let said = s
            .deliver_fixture(phone, "location_message.json")
            .await
            .join("\n");
        assert!(
            said.contains(words(
                lang,
                "Solo puedo leer texto y botones",
                "Só consigo ler texto e botões",
                "I can only read text and buttons"
            )),
            "{said}"
        );
        let said = s.deliver_fixture(phone, "location_message.json").await;
        assert!(said.is_empty(), "said once: {said:?}");
        // The question still waits, and nothing was locked.
        let shown = s.say(phone, demo::DEMO_ID_LAST4).await;
        assert!(shown.contains(words(lang, "CLP", "BRL", "USD")), "{shown}");
    }
}

#[tokio::test]
async fn reactions_in_a_row_do_not_hand_the_debtor_to_a_person() {
    let s = Stack::start().await;
    for (lang, _, phone, _) in PEOPLE {
        s.say(phone, words(lang, "Hola", "Oi", "Hello")).await;
        for _ in 0..3 {
            let said = s.deliver_fixture(phone, "reaction_message.json").await;
            assert!(said.is_empty(), "{said:?}");
        }
        // The bot still answers: no person took the conversation over.
        let asked = s.say(phone, words(lang, "saldo", "saldo", "balance")).await;
        assert!(asked.contains(asks_for_the_id_digits(lang)), "{asked}");
    }
}

#[tokio::test]
async fn a_number_two_debtors_share_gets_a_person_never_the_debt_and_care_for_both() {
    let s = Stack::start().await;
    let phone = "+56912340001";
    // María's number is also on record for her brother, who owes on his own account.
    s.ok(
        "PUT",
        "/v1/debtors/cl-pedro",
        Some(json!({ "name": "Pedro", "phone": phone, "time_zone": "America/Santiago" })),
    )
    .await;
    s.ok(
        "PUT",
        "/v1/accounts/CL-7007",
        Some(
            json!({ "debtor_id": "cl-pedro", "currency": "CLP", "principal_minor": 80000,
            "balance_minor": 80000, "due_date": "2026-11-01" }),
        ),
    )
    .await;
    let answer = s.say(phone, "hola, cuánto debo?").await;
    assert!(answer.contains("persona"), "a person answers: {answer}");
    assert!(
        !answer.contains("CLP") && !answer.contains("María") && !answer.contains("Pedro"),
        "no debt and no name on a shared number: {answer}"
    );
    let tray = s.ok("GET", "/v1/handoffs", None).await.to_string();
    let owner = ["cl-maria", "cl-pedro"]
        .into_iter()
        .find(|d| tray.contains(d))
        .unwrap_or_else(|| panic!("a handoff for one of them: {tray}"));
    // The person can answer: the conversation is theirs.
    let (status, body) = s
        .call(
            "POST",
            &format!("/v1/conversations/{owner}/replies"),
            Some(json!({ "text": "Hola, soy Carla. ¿Con quién hablo?", "agent": "carla" })),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    s.stack.drain().await.unwrap();
    assert_eq!(s.replies().len(), 1);
    // A sign of crisis gets the crisis line and pauses everyone the writer may be.
    let line = s.say(phone, "ya no quiero vivir").await;
    assert!(line.contains("*4141"), "{line}");
    for account in ["CL-1001", "CL-7007"] {
        let a = s.account(account).await.to_string();
        assert!(a.contains("vulnerability"), "{account}: {a}");
    }
    // An opt-out of every channel is confirmed there too.
    let stop = s.say(phone, "dejen de escribirme").await;
    assert!(!stop.is_empty(), "the opt-out is confirmed");
}

#[tokio::test]
async fn a_plan_accepted_after_midnight_ahead_of_utc_is_the_plan_the_debtor_was_told() {
    let s = Stack::start().await;
    let (_, debtor, phone, account) = PEOPLE[2];
    // John on record in Kiritimati (UTC+14): 00:30 on Thursday there, still Wednesday in UTC.
    s.ok(
        "PUT",
        &format!("/v1/debtors/{debtor}"),
        Some(
            json!({ "name": "John", "phone": phone, "time_zone": "Pacific/Kiritimati",
            "language": "en", "consents": [{ "channel": "whatsapp", "granted": true }] }),
        ),
    )
    .await;
    // The tenant wants the first instalment within a week, which the bot offers to the day.
    let store = &s.stack.store;
    let demo_id = cobro::domain::TenantId::parse("demo").unwrap();
    let mut tenant = store.tenant(&demo_id).await.unwrap().unwrap();
    tenant.plan_rules.first_due_within_days = 7;
    store.put_tenant(&tenant).await.unwrap();
    s.set_clock("2026-11-25T10:30:00Z").await;
    s.verify(phone).await;
    s.say(phone, "payment plan").await;
    let done = s.tap(phone, "plan:0").await;
    // Told on his Thursday: the first instalment a week on, on December 3.
    assert!(done.contains("December 3, 2026"), "{done}");
    let a = s.account(account).await;
    assert_eq!(
        a["plan"]["terms"]["instalments"][0]["due"], "2026-12-03",
        "the plan told is the plan stored: {a}"
    );
}

/// Two instalments of a plan late (the tenant's grace days are generous): the payment link the
/// bot sends is for both, what the reminders ask for, not the first one only.
#[tokio::test]
async fn a_payment_link_pays_every_instalment_due() {
    let s = Stack::start().await;
    let (_, _, phone, account) = PEOPLE[0];
    let store = &s.stack.store;
    let demo_id = cobro::domain::TenantId::parse("demo").unwrap();
    let mut tenant = store.tenant(&demo_id).await.unwrap().unwrap();
    tenant.plan_rules.grace_days = 90;
    store.put_tenant(&tenant).await.unwrap();
    s.verify(phone).await;
    s.say(phone, "quiero un plan de pagos").await;
    s.tap(phone, "plan:0").await;
    let a = s.account(account).await;
    let instalments = &a["plan"]["terms"]["instalments"];
    let (first, second) = (&instalments[0], &instalments[1]);
    let due = first["amount_minor"].as_i64().unwrap() + second["amount_minor"].as_i64().unwrap();
    // The day after the second one's due date, midday in Santiago.
    let after = jiff::civil::Date::strptime("%Y-%m-%d", second["due"].as_str().unwrap())
        .unwrap()
        .tomorrow()
        .unwrap();
    s.set_clock(&format!("{after}T16:00:00Z")).await;
    s.verify(phone).await;
    let link = s.tap(phone, "menu:pay").await;
    assert!(link.contains(&format!("amount={due}&")), "{due}: {link}");
}
