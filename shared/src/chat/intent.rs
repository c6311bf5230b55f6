//! What the debtor wants, from a button or list choice first, else from free text by keyword
//! in Spanish, Portuguese or English. Ordered: the first rule that matches wins, and the
//! specific ones ("ya pagué", "no puedo pagar") come before the general ones ("pagar").

use std::sync::OnceLock;

use super::text::{contains_words, contains_words_exact, normalize, words};
use crate::compliance::{classify_keyword, OptKeyword};
use crate::domain::Language;
use crate::inbound::Content;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    Menu,
    Balance,
    Pay,
    Plans,
    Promise,
    Pause,
    Dispute,
    Preferences,
    Channel,
    Hours,
    Human,
    CannotPay,
    OptOut,
    /// An opt-out from every channel ("no me contacten", "dejen de escribirme").
    OptOutAll,
    OptIn,
    Receipt,
    /// "Número equivocado", "no soy Ana": whoever writes is not the debtor. Nothing about
    /// anyone or any debt may be said to them.
    WrongNumber,
    /// A choice the bot offered: its id (`plan:2`, `acct:L-1`, `pause:health` …).
    Choice(String),
    Yes,
    No,
    /// Anything else, kept for the state that waits for an answer (a date, four digits).
    Other(String),
    /// Not said to the bot: a reaction to a message (or its removal), or a message the
    /// provider could not pass on. Nothing to answer.
    Aside,
    /// Something the bot cannot read: a sticker, a voice note, a video, a place, contacts.
    Wordless,
}

/// Phrases per intent, in every language at once (a debtor may answer in another language
/// than their record's). Normalized: no accents, lower case.
const PHRASES: &[(&str, &[&str])] = &[
    (
        "wrong_number",
        &[
            "numero equivocado",
            "numero incorrecto",
            "equivocaron de numero",
            "equivocado de numero",
            "persona equivocada",
            "equivocaron de persona",
            "no soy el titular",
            "no soy la titular",
            "no conozco a esa persona",
            "no conozco a esta persona",
            "numero errado",
            "pessoa errada",
            "foi engano",
            "nao sou o titular",
            "nao sou a titular",
            "nao conheco essa pessoa",
            "nao conheco esta pessoa",
            "wrong number",
            "wrong person",
            "not the account holder",
            "don t know this person",
            "dont know this person",
            "do not know this person",
        ],
    ),
    (
        "human",
        &[
            "persona",
            "humano",
            "agente",
            "ejecutiv*",
            "asesor",
            "asesora",
            "operador",
            "hablar con alguien",
            "atendente",
            "pessoa",
            "falar com alguem",
            "human",
            "agent",
            "person",
            "representative",
            "real person",
            "someone",
        ],
    ),
    (
        "dispute",
        &[
            "no debo",
            "no es mia",
            "no es mio",
            "no es mi deuda",
            "ya pague",
            "ya la pague",
            "ya lo pague",
            "no reconozco",
            "fraude",
            "reclamo",
            "monto incorrecto",
            "nao devo",
            "nao e minha",
            "ja paguei",
            "nao reconheco",
            "contestar",
            "valor incorreto",
            "dont owe",
            "don t owe",
            "do not owe",
            "not mine",
            "not my debt",
            "already paid",
            "dispute",
            "fraud",
            "wrong amount",
        ],
    ),
    (
        "cannot_pay",
        &[
            "no puedo pagar",
            "no tengo como pagar",
            "no tengo plata",
            "no tengo dinero",
            "nao consigo pagar",
            "nao posso pagar",
            "nao tenho dinheiro",
            "cant pay",
            "can t pay",
            "cannot pay",
            "unable to pay",
            "no money",
        ],
    ),
    (
        "promise",
        &[
            "prometo",
            "promesa",
            "pagare el",
            "puedo pagar el",
            "te pago el",
            "compromiso",
            "vou pagar",
            "posso pagar",
            "pago dia",
            "promise",
            "i will pay",
            "i ll pay",
            "i can pay on",
        ],
    ),
    (
        "plans",
        &[
            "plan",
            "cuotas",
            "convenio",
            "repactar",
            "repactacion",
            "acuerdo",
            "parcelar",
            "parcelas",
            "parcelamento",
            "acordo",
            "plano",
            "instalments",
            "installments",
            "payment plan",
            "arrangement",
        ],
    ),
    (
        "pause",
        &[
            "pausa",
            "necesito tiempo",
            "dame tiempo",
            "mas tiempo",
            "esperar",
            "preciso de tempo",
            "mais tempo",
            "um tempo",
            "pause",
            "breathing space",
            "more time",
            "need time",
        ],
    ),
    (
        "channel",
        &[
            "por sms",
            "por correo",
            "por email",
            "por mail",
            "por whatsapp",
            "canal",
            "text me",
            "by email",
            "by sms",
            "channel",
        ],
    ),
    (
        "hours",
        &[
            "horario",
            "en la manana",
            "en la tarde",
            "en la noche",
            "de manha",
            "a tarde",
            "a noite",
            "hours",
            "in the morning",
            "in the afternoon",
            "in the evening",
        ],
    ),
    (
        "preferences",
        &[
            "preferencias",
            "preferencia",
            "preferences",
            "settings",
            "configuracion",
        ],
    ),
    (
        "pay",
        &[
            "pagar",
            "pago",
            "link",
            "enlace",
            "transferencia",
            "pagamento",
            "boleto",
            "pix",
            "pay",
            "payment",
        ],
    ),
    (
        "balance",
        &[
            "saldo",
            "cuanto debo",
            "cuanto es",
            "deuda",
            "monto",
            "estado de cuenta",
            "quanto devo",
            "divida",
            "valor",
            "balance",
            "how much",
            "owe",
            "amount",
            "statement",
        ],
    ),
    (
        "menu",
        &[
            "menu",
            "hola",
            "buenas",
            "buenos dias",
            "buenas tardes",
            "ayuda",
            "opciones",
            "oi",
            "ola",
            "bom dia",
            "boa tarde",
            "ajuda",
            "opcoes",
            "hi",
            "hello",
            "hey",
            "help",
            "options",
        ],
    ),
    (
        "yes",
        &[
            "si",
            "sí",
            "ok",
            "dale",
            "confirmo",
            "de acuerdo",
            "estoy de acuerdo",
            "esta bien",
            "claro",
            "sim",
            "ta bom",
            "okay",
            "pode ser",
            "yes",
            "sure",
        ],
    ),
    ("no", &["no", "nao", "nope"]),
];

/// An intent's name and its phrases, each split into normalized words.
type Phrases = (&'static str, Vec<Vec<String>>);

/// `PHRASES`, normalized and split into words once.
fn lexicon() -> &'static [Phrases] {
    static LEXICON: OnceLock<Vec<Phrases>> = OnceLock::new();
    LEXICON.get_or_init(|| {
        PHRASES
            .iter()
            .map(|(name, phrases)| {
                let split = phrases
                    .iter()
                    .map(|p| {
                        // A trailing * is a stem ("ejecutiv*"): kept through normalizing.
                        let n = normalize(p);
                        let n = if p.ends_with('*') { format!("{n}*") } else { n };
                        n.split(' ').map(str::to_string).collect()
                    })
                    .collect();
                (*name, split)
            })
            .collect()
    })
}

fn from_name(name: &str) -> Intent {
    match name {
        "wrong_number" => Intent::WrongNumber,
        "human" => Intent::Human,
        "dispute" => Intent::Dispute,
        "cannot_pay" => Intent::CannotPay,
        "promise" => Intent::Promise,
        "plans" => Intent::Plans,
        "pause" => Intent::Pause,
        "channel" => Intent::Channel,
        "hours" => Intent::Hours,
        "preferences" => Intent::Preferences,
        "pay" => Intent::Pay,
        "balance" => Intent::Balance,
        "menu" => Intent::Menu,
        "yes" => Intent::Yes,
        _ => Intent::No,
    }
}

/// The ids of the bot's own buttons and list rows.
pub mod ids {
    pub const BALANCE: &str = "menu:balance";
    pub const PAY: &str = "menu:pay";
    pub const PLANS: &str = "menu:plans";
    pub const PROMISE: &str = "menu:promise";
    pub const PAUSE: &str = "menu:pause";
    pub const DISPUTE: &str = "menu:dispute";
    pub const PREFS: &str = "menu:prefs";
    pub const HUMAN: &str = "menu:human";
    pub const CHANNEL: &str = "prefs:channel";
    pub const HOURS: &str = "prefs:hours";
}

/// Reads one message. `offered` are the choice ids of the bot's last question, in order, so a
/// bare number ("2") picks one, as on SMS where there are no buttons.
pub fn read(content: &Content, offered: &[String]) -> Intent {
    // What the consent record reads as an opt-out or opt-in (a STOP button's payload, a
    // captioned BAJA) the conversation answers as one, so the debtor is told it was done.
    if let Some(signal) = content.opt_signal() {
        return match signal.keyword {
            OptKeyword::OptIn => Intent::OptIn,
            OptKeyword::OptOut => Intent::OptOut,
            OptKeyword::OptOutAll => Intent::OptOutAll,
        };
    }
    match content {
        Content::Choice { id, title } => {
            from_choice(id).unwrap_or_else(|| from_text(title, offered))
        }
        Content::Text { body } => from_text(body, offered),
        Content::Media { media, .. } if media == "image" || media == "document" => Intent::Receipt,
        Content::Media {
            caption: Some(c), ..
        } if !c.trim().is_empty() => from_text(c, offered),
        Content::Reaction { .. } | Content::Unsupported { .. } => Intent::Aside,
        Content::Media { .. } | Content::Location { .. } | Content::Contacts { .. } => {
            Intent::Wordless
        }
    }
}

fn from_choice(id: &str) -> Option<Intent> {
    Some(match id {
        ids::BALANCE => Intent::Balance,
        ids::PAY => Intent::Pay,
        ids::PLANS => Intent::Plans,
        ids::PROMISE => Intent::Promise,
        ids::PAUSE => Intent::Pause,
        ids::DISPUTE => Intent::Dispute,
        ids::PREFS => Intent::Preferences,
        ids::HUMAN => Intent::Human,
        ids::CHANNEL => Intent::Channel,
        ids::HOURS => Intent::Hours,
        other if other.contains(':') => Intent::Choice(other.to_string()),
        // A template's quick reply carries the tenant's own payload: read its title instead.
        _ => return None,
    })
}

fn from_text(body: &str, offered: &[String]) -> Intent {
    match classify_keyword(body) {
        Some(OptKeyword::OptIn) => return Intent::OptIn,
        Some(OptKeyword::OptOut) => return Intent::OptOut,
        Some(OptKeyword::OptOutAll) => return Intent::OptOutAll,
        None => {}
    }
    let normalized = normalize(body);
    if let Ok(n) = normalized.parse::<usize>() {
        if (1..=offered.len()).contains(&n) {
            return from_choice(&offered[n - 1]).unwrap_or(Intent::Choice(offered[n - 1].clone()));
        }
        return Intent::Other(normalized);
    }
    let w = words(&normalized);
    if let Some(answer) = yes_or_no(&w) {
        return answer;
    }
    for (name, phrases) in lexicon() {
        if *name == "yes" || *name == "no" {
            continue;
        }
        // A person and a dispute are read exactly: their near misses mean something else
        // ("préstamo personal", "crédito pessoal", "contesta"), and a wrong guess hands the
        // conversation over or stops collection.
        let exact = matches!(*name, "human" | "dispute");
        let hit = |p: &Vec<String>| {
            if exact {
                contains_words_exact(&w, p)
            } else {
                contains_words(&w, p)
            }
        };
        if phrases.iter().any(hit) {
            return from_name(name);
        }
    }
    Intent::Other(normalized)
}

/// Whether the text says the writer is not `name` ("no soy Ana", "não sou a Ana", "I'm not
/// Ana", "no conozco a Ana"): the number reached someone else.
pub fn denies_being(body: &str, name: &str) -> bool {
    let name = normalize(name);
    let Some(first) = words(&name).first().map(|s| s.to_string()) else {
        return false;
    };
    let normalized = normalize(body);
    let w = words(&normalized);
    const DENIALS: [&[&str]; 13] = [
        &["no", "soy"],
        &["yo", "no", "soy"],
        &["no", "conozco", "a"],
        &["nao", "sou"],
        &["nao", "sou", "a"],
        &["nao", "sou", "o"],
        &["nao", "conheco"],
        &["nao", "conheco", "a"],
        &["nao", "conheco", "o"],
        &["i", "m", "not"],
        &["im", "not"],
        &["i", "am", "not"],
        &["this", "is", "not"],
    ];
    DENIALS.iter().any(|d| {
        let mut phrase: Vec<&str> = d.to_vec();
        phrase.push(&first);
        // The name exactly: "no soy Anastasia" is no denial of being Ana.
        w.windows(phrase.len()).any(|x| x == phrase.as_slice())
    })
}

/// Words that may come with a yes or a no without changing it.
const COURTESY: [&str; 8] = [
    "gracias", "obrigado", "obrigada", "thanks", "thank", "you", "por", "favor",
];

/// A yes or a no, only when that is all the message says (give or take a thanks): inside a
/// sentence "no" is just a word ("no me interesa", "no sé"), and "de acuerdo" alone is a yes,
/// not a payment arrangement.
fn yes_or_no(w: &[&str]) -> Option<Intent> {
    let rest: Vec<&str> = w
        .iter()
        .copied()
        .filter(|x| !COURTESY.contains(x))
        .collect();
    if rest.is_empty() {
        return None;
    }
    for (name, phrases) in lexicon() {
        if *name != "yes" && *name != "no" {
            continue;
        }
        // Every word is one of the answer's phrases, said once or a few times ("si si", "ok dale").
        let mut at = 0;
        while at < rest.len() {
            let Some(p) = phrases.iter().find(|p| {
                rest[at..].len() >= p.len()
                    && rest[at..at + p.len()]
                        .iter()
                        .zip(p.iter())
                        .all(|(a, b)| a == b)
            }) else {
                break;
            };
            at += p.len();
        }
        if at == rest.len() {
            return Some(from_name(name));
        }
    }
    None
}

/// The language a text is most likely in, when it says enough to tell: words that belong to
/// one of cobro's languages only. Words Spanish and Portuguese share ("por favor", "pagar",
/// "como", "pague") tell nothing: "quero pagar por favor" is not Spanish.
pub fn detect_language(text: &str) -> Option<Language> {
    const MARKERS: [(Language, &[&str]); 3] = [
        (
            Language::Es,
            &[
                "quiero", "puedo", "tengo", "cuanto", "hola", "gracias", "deuda", "mi", "el",
                "los", "las", "usted", "necesito", "ya", "estoy", "hoy", "cuenta", "dinero",
            ],
        ),
        (
            Language::Pt,
            &[
                "quero", "posso", "tenho", "quanto", "oi", "ola", "obrigado", "obrigada", "divida",
                "meu", "minha", "voce", "nao", "preciso", "ja", "paguei", "um", "uma", "estou",
                "hoje", "conta", "dinheiro",
            ],
        ),
        (
            Language::En,
            &[
                "i", "want", "can", "have", "how", "much", "hello", "hi", "thanks", "thank", "you",
                "pay", "my", "the", "please", "need", "already", "paid", "what",
            ],
        ),
    ];
    let normalized = normalize(text);
    let w = words(&normalized);
    let mut best: Option<(Language, usize)> = None;
    let mut tie = false;
    for (lang, markers) in MARKERS {
        let score = w.iter().filter(|x| markers.contains(x)).count();
        match best {
            Some((_, s)) if score == s => tie = true,
            Some((_, s)) if score < s => {}
            _ => {
                best = Some((lang, score));
                tie = false;
            }
        }
    }
    match best {
        Some((lang, score)) if score >= 2 && !tie => Some(lang),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Content {
        Content::Text { body: s.into() }
    }

    #[test]
    fn free_text_in_three_languages() {
        let cases = [
            ("¿Cuánto debo?", Intent::Balance),
            ("quanto devo", Intent::Balance),
            ("what's my balance", Intent::Balance),
            ("Quiero pagar", Intent::Pay),
            ("quero pagar com pix", Intent::Pay),
            ("how do I pay", Intent::Pay),
            ("Ya pagué!!", Intent::Dispute),
            ("já paguei", Intent::Dispute),
            ("I already paid", Intent::Dispute),
            ("no puedo pagar este mes", Intent::CannotPay),
            ("quiero un plan en cuotas", Intent::Plans),
            ("posso parcelar?", Intent::Plans),
            ("can I get a payment plan", Intent::Plans),
            ("necesito una pausa", Intent::Pause),
            ("Quiero hablar con una persona", Intent::Human),
            ("falar com atendente", Intent::Human),
            ("prometo pagar el viernes", Intent::Promise),
            ("hola", Intent::Menu),
            ("Oi", Intent::Menu),
            ("sí", Intent::Yes),
            ("STOP", Intent::OptOut),
            ("baja por favor", Intent::OptOut),
            ("ALTA", Intent::OptIn),
        ];
        for (input, want) in cases.iter() {
            assert_eq!(read(&text(input), &[]), *want, "{input}");
        }
        // A yes or a no is the whole message; inside a sentence "no" is just a word.
        for (input, want) in [
            ("no", Intent::No),
            ("No, gracias", Intent::No),
            ("não", Intent::No),
            ("De acuerdo", Intent::Yes),
            ("sí, de acuerdo", Intent::Yes),
            ("ok gracias", Intent::Yes),
        ] {
            assert_eq!(read(&text(input), &[]), want, "{input}");
        }
        for input in ["no me interesa", "no sé", "si quiero"] {
            assert!(
                matches!(read(&text(input), &[]), Intent::Other(_)),
                "{input}"
            );
        }
        // Asking to be left alone is an opt-out, never a "no" or a misunderstanding.
        for input in [
            "No me escriban",
            "dejen de escribirme",
            "pare de me mandar mensagens",
            "parem de me ligar",
            "stop texting me",
            "don't contact me",
        ] {
            assert!(
                matches!(read(&text(input), &[]), Intent::OptOut | Intent::OptOutAll),
                "{input}"
            );
        }
        // Whoever writes is someone else.
        for input in [
            "número equivocado",
            "Se equivocaron de número",
            "wrong number",
            "número errado",
            "no soy el titular",
        ] {
            assert_eq!(read(&text(input), &[]), Intent::WrongNumber, "{input}");
        }
        assert!(denies_being("No soy Ana", "Ana Pérez"));
        assert!(denies_being("não sou a ana", "Ana Pérez"));
        assert!(denies_being("I'm not Ana, sorry", "Ana Pérez"));
        assert!(!denies_being("no soy capaz de pagar", "Ana Pérez"));
        assert!(!denies_being("no soy Anastasia", "Ana Pérez"));
        // Near misses of a person or a dispute are not one.
        for input in [
            "quiero pagar mi préstamo personal",
            "meu crédito pessoal",
            "nadie contesta el teléfono",
        ] {
            let got = read(&text(input), &[]);
            assert!(
                !matches!(got, Intent::Human | Intent::Dispute),
                "{input}: {got:?}"
            );
        }
        assert_eq!(read(&text("quero contestar"), &[]), Intent::Dispute);
        // Typos.
        assert_eq!(read(&text("quero parcelarr"), &[]), Intent::Plans);
        assert_eq!(read(&text("hablar con un ejecutivoo"), &[]), Intent::Human);
    }

    #[test]
    fn buttons_and_numbers_pick_offered_choices() {
        let offered = vec!["plan:0".to_string(), "plan:1".to_string()];
        assert_eq!(
            read(
                &Content::Choice {
                    id: "plan:1".into(),
                    title: "6 cuotas".into()
                },
                &offered
            ),
            Intent::Choice("plan:1".into())
        );
        assert_eq!(read(&text("2"), &offered), Intent::Choice("plan:1".into()));
        assert_eq!(read(&text("7"), &offered), Intent::Other("7".into()));
        assert_eq!(
            read(&text("1"), &[ids::BALANCE.to_string()]),
            Intent::Balance
        );
        // A template quick reply with the tenant's own payload: its title is read.
        assert_eq!(
            read(
                &Content::Choice {
                    id: "QR_PAY_NOW".into(),
                    title: "Pagar ahora".into()
                },
                &[]
            ),
            Intent::Pay
        );
    }

    #[test]
    fn receipts_are_images_and_documents() {
        let media = |kind: &str| Content::Media {
            media: kind.into(),
            media_id: "1".into(),
            mime_type: None,
            sha256: None,
            caption: None,
            filename: None,
        };
        assert_eq!(read(&media("image"), &[]), Intent::Receipt);
        assert_eq!(read(&media("document"), &[]), Intent::Receipt);
        assert_eq!(read(&media("sticker"), &[]), Intent::Wordless);
    }

    #[test]
    fn content_without_words_is_never_read_as_an_answer() {
        let media = |kind: &str, caption: Option<&str>| Content::Media {
            media: kind.into(),
            media_id: "1".into(),
            mime_type: None,
            sha256: None,
            caption: caption.map(str::to_string),
            filename: None,
        };
        let reaction = |emoji: Option<&str>| Content::Reaction {
            to: "wamid.1".into(),
            emoji: emoji.map(str::to_string),
        };
        assert_eq!(read(&reaction(Some("👍")), &[]), Intent::Aside);
        assert_eq!(read(&reaction(None), &[]), Intent::Aside, "a removal");
        let unsupported = Content::Unsupported {
            code: Some(131051),
            detail: "unsupported".into(),
        };
        assert_eq!(read(&unsupported, &[]), Intent::Aside);
        for kind in ["sticker", "audio", "video"] {
            assert_eq!(read(&media(kind, None), &[]), Intent::Wordless, "{kind}");
            assert_eq!(
                read(&media(kind, Some(" ")), &[]),
                Intent::Wordless,
                "{kind}"
            );
        }
        assert_eq!(read(&media("video", Some("saldo")), &[]), Intent::Balance);
        let place = Content::Location {
            latitude: -33.4,
            longitude: -70.6,
            name: None,
        };
        assert_eq!(read(&place, &[]), Intent::Wordless);
        assert_eq!(read(&Content::Contacts { count: 1 }, &[]), Intent::Wordless);
    }

    /// What the consent record reads as an opt-out, the conversation does too: a template's
    /// opt-out button by its payload, Meta's marketing opt-out button, a receipt captioned BAJA.
    #[test]
    fn opt_out_buttons_and_captions_are_opt_outs() {
        let button = |id: &str, title: &str| Content::Choice {
            id: id.into(),
            title: title.into(),
        };
        assert_eq!(
            read(&button("OPTOUT", "No more messages"), &[]),
            Intent::OptOut
        );
        assert_eq!(read(&button("x-1", "Stop promotions"), &[]), Intent::OptOut);
        let captioned = Content::Media {
            media: "image".into(),
            media_id: "1".into(),
            mime_type: None,
            sha256: None,
            caption: Some("BAJA".into()),
            filename: None,
        };
        assert_eq!(read(&captioned, &[]), Intent::OptOut);
        assert_eq!(read(&button(ids::PAY, "Pagar"), &[]), Intent::Pay);
    }

    #[test]
    fn language_is_detected_only_when_clear() {
        assert_eq!(
            detect_language("Hola, quiero pagar mi deuda"),
            Some(Language::Es)
        );
        assert_eq!(
            detect_language("Oi, quero pagar minha dívida"),
            Some(Language::Pt)
        );
        assert_eq!(
            detect_language("Hi, I want to pay my debt"),
            Some(Language::En)
        );
        assert_eq!(detect_language("ok"), None);
        // Words both languages share say nothing.
        for shared in [
            "quero pagar por favor",
            "como pagar por favor",
            "pague por favor",
        ] {
            assert_ne!(detect_language(shared), Some(Language::Es), "{shared}");
        }
        assert_eq!(
            detect_language("Oi, quero pagar por favor"),
            Some(Language::Pt)
        );
        assert_eq!(
            detect_language("Hola, quiero pagar por favor"),
            Some(Language::Es)
        );
    }
}
