//! Opt-out and opt-in words in cobro's languages (STOP, BAJA, PARAR, SAIR … START, ALTA,
//! VOLTAR …), matched after folding case, accents and punctuation.
//!
//! An opt-out is honoured leniently (US Reg F: honour a stop however it is worded): the
//! keyword may come with a few polite or filler words ("Baja por favor", "please STOP").
//! Words that change the meaning make it no match, for a person to read: "cancelar mi deuda"
//! means paying the debt off, not unsubscribing. An opt-in must be the whole message, so
//! contact never resumes on an ambiguous text.

use serde::{Deserialize, Serialize};

use crate::domain::{ChannelKind, Language};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptKeyword {
    /// Stop writing on the channel the message came on.
    OptOut,
    /// Stop writing on every channel ("STOP ALL", "no me contacten").
    OptOutAll,
    /// Writing on this channel may resume.
    OptIn,
}

impl OptKeyword {
    pub fn as_str(self) -> &'static str {
        match self {
            OptKeyword::OptOut => "opt_out",
            OptKeyword::OptOutAll => "opt_out_all",
            OptKeyword::OptIn => "opt_in",
        }
    }

    /// Whether it grants consent (`true`) or withdraws it (`false`).
    pub fn grants(self) -> bool {
        self == OptKeyword::OptIn
    }

    /// The channels whose consent record it changes, for a message received on `on`.
    pub fn channels(self, on: ChannelKind) -> Vec<ChannelKind> {
        match self {
            OptKeyword::OptOutAll => {
                vec![ChannelKind::Whatsapp, ChannelKind::Sms, ChannelKind::Email]
            }
            OptKeyword::OptOut | OptKeyword::OptIn => vec![on],
        }
    }
}

/// Opt-out words and phrases, folded, per language. Those marked whole-message-only in
/// `WHOLE_ONLY` have other meanings inside a sentence.
const OPT_OUT: [(Language, &[&str]); 3] = [
    (
        Language::En,
        &[
            "stop",
            "unsubscribe",
            "cancel",
            "end",
            "quit",
            "opt out",
            "optout",
            "stop texting",
        ],
    ),
    (
        Language::Es,
        &[
            "baja",
            "darme de baja",
            "dar de baja",
            "parar",
            "para",
            "detener",
            "cancelar",
            "no mas",
            "no mas mensajes",
            "no quiero mas mensajes",
        ],
    ),
    (
        Language::Pt,
        &[
            "sair",
            "parar",
            "pare",
            "cancelar",
            "descadastrar",
            "nao quero mais",
            "chega",
        ],
    ),
];

/// Opt-outs from every channel.
const OPT_OUT_ALL: [(Language, &[&str]); 3] = [
    (
        Language::En,
        &[
            "stop all",
            "stopall",
            "unsubscribe all",
            "do not contact me",
            "dont contact me",
            "stop contacting me",
        ],
    ),
    (
        Language::Es,
        &[
            "no me contacten",
            "no me contacten mas",
            "no me contactes",
            "no me contactes mas",
            "no me escriban mas",
            "no contactar",
            "baja de todo",
            "parar todo",
        ],
    ),
    (
        Language::Pt,
        &[
            "nao me contate",
            "nao me contatem",
            "nao me contatem mais",
            "parar tudo",
            "sair de tudo",
        ],
    ),
];

const OPT_IN: [(Language, &[&str]); 3] = [
    (
        Language::En,
        &["start", "unstop", "subscribe", "opt in", "optin"],
    ),
    (
        Language::Es,
        &["alta", "darme de alta", "volver", "reanudar", "suscribir"],
    ),
    (Language::Pt, &["voltar", "retomar", "assinar"]),
];

/// Words with another meaning in a sentence ("para" = for, "cancelar" = pay off, "end",
/// "chega" = arrives): a keyword only when they are the whole message.
const WHOLE_ONLY: [&str; 6] = ["para", "cancelar", "cancel", "end", "quit", "chega"];

/// Words that may surround an opt-out without changing it.
const FILLER: [&str; 49] = [
    "please",
    "pls",
    "plz",
    "thanks",
    "thank",
    "you",
    "now",
    "me",
    "messages",
    "texts",
    "it",
    "por",
    "favor",
    "gracias",
    "ya",
    "mensajes",
    "ahora",
    "los",
    "mensajitos",
    "whatsapp",
    "sms",
    "email",
    "obrigado",
    "obrigada",
    "agora",
    "mensagens",
    "as",
    "de",
    "mais",
    "ok",
    "more",
    "sending",
    "stop",
    "pf",
    "mas",
    "a",
    "este",
    "numero",
    "aqui",
    "mensaje",
    "mensagem",
    "message",
    "neste",
    "this",
    "number",
    "again",
    "anymore",
    "to",
    "ever",
];

/// Asking to be left alone in the debtor's own words ("no me escriban", "dejen de llamarme",
/// "parem de me ligar", "stop texting me", "don't contact me"): a verb of contact after a
/// negation or a "stop doing". Matched on forms, not a list of sentences, since debtors word
/// it every way. Words meaning "text" only (an SMS) stop this channel, the rest every channel.
fn cease_request(words: &[&str]) -> Option<OptKeyword> {
    // Conjugated after "no me" / "não me": forms, not stems ("no me llamo Ana" is a name).
    const AFTER_NO_ME: &[&str] = &[
        "escriban",
        "escribas",
        "escriba",
        "llamen",
        "llames",
        "llame",
        "molesten",
        "molestes",
        "moleste",
        "contacten",
        "contactes",
        "contacte",
        "manden",
        "mandes",
        "mande",
        "envien",
        "envies",
        "envie",
        "liguem",
        "ligue",
        "escrevam",
        "escreva",
        "mandem",
        "enviem",
        "contatem",
        "contate",
        "incomodem",
        "incomode",
        "perturbem",
        "perturbe",
        "chamem",
    ];
    // After "dejen de" / "pare de (me)": an infinitive, with its pronoun or not.
    const STEMS: &[&str] = &[
        "escrib", "llam", "molest", "contact", "mand", "envi", "escrev", "lig", "contat",
        "incomod", "perturb", "cham",
    ];
    const STOP_DOING: &[&str] = &[
        "deja", "dejen", "dejes", "dejar", "pare", "parem", "paren", "para", "parar",
    ];
    // English: "stop texting", "don't contact".
    const EN: &[(&str, &str)] = &[
        ("texting", "text"),
        ("messaging", "message"),
        ("contacting", "contact"),
        ("calling", "call"),
        ("emailing", "email"),
        ("bothering", "bother"),
        ("writing", "write"),
        ("harassing", "harass"),
    ];
    let scope = |verb: &str| {
        if verb.starts_with("text") {
            OptKeyword::OptOut
        } else {
            OptKeyword::OptOutAll
        }
    };
    let filler_around = |start: usize, len: usize| {
        words.len() <= len + 5
            && words[..start]
                .iter()
                .chain(&words[start + len..])
                .all(|w| FILLER.contains(w))
    };
    for i in 0..words.len() {
        let at = |k: usize| words.get(i + k).copied().unwrap_or("");
        let found: Option<(usize, &str)> =
            if matches!(at(0), "no" | "nao") && at(1) == "me" && AFTER_NO_ME.contains(&at(2)) {
                Some((3, at(2)))
            } else if STOP_DOING.contains(&at(0)) && at(1) == "de" {
                let (verb, len) = if at(2) == "me" {
                    (at(3), 4)
                } else {
                    (at(2), 3)
                };
                STEMS
                    .iter()
                    .any(|s| verb.starts_with(s))
                    .then_some((len, verb))
            } else if at(0) == "stop" {
                EN.iter().find(|(ing, _)| *ing == at(1)).map(|_| (2, at(1)))
            } else {
                let (neg, verb) = match (at(0), at(1), at(2)) {
                    ("do", "not", v) | ("don", "t", v) => (3, v),
                    ("dont", v, _) => (2, v),
                    _ => (0, ""),
                };
                (neg > 0 && EN.iter().any(|(_, base)| *base == verb)).then_some((neg, verb))
            };
        if let Some((len, verb)) = found {
            if filler_around(i, len) {
                return Some(scope(verb));
            }
        }
    }
    None
}

/// Lower case, accents off, every other character a space, words single-spaced.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = true;
    for c in text.chars().flat_map(char::to_lowercase) {
        let c = match c {
            'á' | 'à' | 'â' | 'ã' | 'ä' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'õ' | 'ö' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ñ' => 'n',
            'ç' => 'c',
            c if c.is_alphanumeric() => c,
            _ => ' ',
        };
        if c == ' ' {
            if !space {
                out.push(' ');
            }
            space = true;
        } else {
            out.push(c);
            space = false;
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

fn phrases(
    table: &'static [(Language, &'static [&'static str])],
) -> impl Iterator<Item = &'static str> {
    table.iter().flat_map(|(_, words)| words.iter().copied())
}

/// Whether `words` is `phrase` with only filler words around it.
fn wrapped(words: &[&str], phrase: &str) -> bool {
    let p: Vec<&str> = phrase.split(' ').collect();
    if words.len() > p.len() + 5 {
        return false;
    }
    (0..=words.len().saturating_sub(p.len())).any(|i| {
        words[i..].starts_with(&p)
            && words[..i]
                .iter()
                .chain(&words[i + p.len()..])
                .all(|w| FILLER.contains(w))
    })
}

/// What a message from a debtor says about being written to, if it is an opt-out or opt-in.
pub fn classify_keyword(text: &str) -> Option<OptKeyword> {
    let folded = fold(text);
    if folded.is_empty() {
        return None;
    }
    let whole = |table| phrases(table).any(|p| p == folded);
    if whole(&OPT_OUT_ALL) {
        return Some(OptKeyword::OptOutAll);
    }
    if whole(&OPT_OUT) {
        return Some(OptKeyword::OptOut);
    }
    if whole(&OPT_IN) {
        return Some(OptKeyword::OptIn);
    }
    let words: Vec<&str> = folded.split(' ').collect();
    if phrases(&OPT_OUT_ALL).any(|p| wrapped(&words, p)) {
        return Some(OptKeyword::OptOutAll);
    }
    let lenient = phrases(&OPT_OUT).filter(|p| !WHOLE_ONLY.contains(p));
    for p in lenient {
        if wrapped(&words, p) {
            return Some(OptKeyword::OptOut);
        }
    }
    cease_request(&words)
}

/// The payload of the opt-out quick reply every collection template carries (index 0): read
/// back as an opt-out whatever the button's label (`Content::opt_signal`).
pub const OPT_OUT_PAYLOAD: &str = "OPTOUT";

/// The label of that button, per language, as the templates are registered at Meta.
pub fn opt_out_button(language: Language) -> &'static str {
    match language {
        Language::Es => "No recibir más",
        Language::Pt => "Não receber mais",
        Language::En => "Stop messages",
    }
}

/// The line a collection message without an opt-out button carries (SMS, e-mail, a free-form
/// WhatsApp message): every one says how to stop them, as Reg F §1006.6(e) requires in the US
/// and Meta asks of collection messages everywhere.
pub fn opt_out_line(language: Language) -> &'static str {
    match language {
        Language::Es => "Para no recibir más mensajes, responde BAJA.",
        Language::Pt => "Para não receber mais mensagens, responda SAIR.",
        Language::En => "Reply STOP to stop receiving these messages.",
    }
}

/// What a debtor who writes on a channel they opted out of is told, once per opted-out
/// period: that they opted out, and the opt-in word (in `OPT_IN`) that lets them talk again.
/// Nothing about a debt: they asked not to be written to about it.
pub fn opted_out_notice(language: Language) -> &'static str {
    match language {
        Language::Es => {
            "Pediste no recibir más mensajes por aquí, así que no te escribiremos. Si quieres volver a hablar con nosotros, responde ALTA."
        }
        Language::Pt => {
            "Você pediu para não receber mais mensagens por aqui, então não vamos escrever. Se quiser voltar a falar conosco, responda VOLTAR."
        }
        Language::En => {
            "You asked not to receive messages here, so we will not write to you. To talk with us again, reply START."
        }
    }
}

/// The opt-out and opt-in words of a language, folded (for help texts and templates).
pub fn keywords(language: Language) -> (&'static [&'static str], &'static [&'static str]) {
    let find = |table: &'static [(Language, &'static [&'static str]); 3]| {
        table
            .iter()
            .find(|(l, _)| *l == language)
            .map_or(&[][..], |(_, w)| *w)
    };
    (find(&OPT_OUT), find(&OPT_IN))
}

#[cfg(test)]
mod tests {
    use super::*;
    use OptKeyword::*;

    #[test]
    fn keywords_in_every_language_fold_case_accents_and_punctuation() {
        let cases: &[(&str, Option<OptKeyword>)] = &[
            ("STOP", Some(OptOut)),
            ("stop.", Some(OptOut)),
            ("  Stop!!! ", Some(OptOut)),
            ("Unsubscribe", Some(OptOut)),
            ("BAJA", Some(OptOut)),
            ("baja por favor", Some(OptOut)),
            ("Darme de baja", Some(OptOut)),
            ("PARAR", Some(OptOut)),
            ("Pará", Some(OptOut)),
            ("No más", Some(OptOut)),
            ("NO MAS MENSAJES", Some(OptOut)),
            ("SAIR", Some(OptOut)),
            ("Sair, obrigado", Some(OptOut)),
            ("Não quero mais", Some(OptOut)),
            ("CANCELAR", Some(OptOut)),
            ("please stop", Some(OptOut)),
            ("STOP ALL", Some(OptOutAll)),
            ("No me contacten", Some(OptOutAll)),
            ("não me contatem!", Some(OptOutAll)),
            ("START", Some(OptIn)),
            ("Alta", Some(OptIn)),
            ("VOLTAR", Some(OptIn)),
            ("unstop", Some(OptIn)),
            // Asking to be left alone, however worded.
            ("No me escriban", Some(OptOutAll)),
            ("no me escriban más por favor", Some(OptOutAll)),
            ("Dejen de escribirme", Some(OptOutAll)),
            ("deja de llamarme!", Some(OptOutAll)),
            ("no me molesten mas", Some(OptOutAll)),
            ("Pare de me mandar mensagens", Some(OptOutAll)),
            ("parem de me ligar", Some(OptOutAll)),
            ("não me liguem mais", Some(OptOutAll)),
            ("stop texting me", Some(OptOut)),
            ("please stop messaging me", Some(OptOutAll)),
            ("Don't contact me", Some(OptOutAll)),
            ("do not call me again", Some(OptOutAll)),
            ("dont email me", Some(OptOutAll)),
            // Not keywords: sentences with other meanings, or ambiguous.
            ("Quiero cancelar mi deuda", None),
            ("para cuando es el pago?", None),
            ("I can't stop thinking about paying this week", None),
            ("start paying next month", None),
            ("hola", None),
            ("", None),
            ("!!!", None),
            ("the end of the month", None),
            ("No me llamo Ana", None),
            ("no me manden el link todavía", None),
            ("para de pagar no tengo", None),
            ("don't call me before noon please thanks", None),
            ("dejen de cobrarme intereses", None),
        ];
        for (text, expected) in cases {
            assert_eq!(classify_keyword(text), *expected, "{text:?}");
        }
    }

    #[test]
    fn scope_and_lines() {
        assert_eq!(OptOut.channels(ChannelKind::Sms), vec![ChannelKind::Sms]);
        assert_eq!(OptOutAll.channels(ChannelKind::Sms).len(), 3);
        assert!(OptIn.grants() && !OptOut.grants());
        assert!(opt_out_line(Language::En).contains("STOP"));
        assert!(opt_out_line(Language::Es).contains("BAJA"));
        assert!(opt_out_line(Language::Pt).contains("SAIR"));
        // The notice's opt-in word is one, in its own language.
        for (l, word) in [
            (Language::Es, "ALTA"),
            (Language::Pt, "VOLTAR"),
            (Language::En, "START"),
        ] {
            assert!(opted_out_notice(l).contains(word), "{l:?}");
            assert_eq!(classify_keyword(word), Some(OptIn), "{word}");
            assert!(
                keywords(l).1.contains(&word.to_lowercase().as_str()),
                "{word}"
            );
        }
        let (out, in_) = keywords(Language::Pt);
        assert!(out.contains(&"sair") && in_.contains(&"voltar"));
        // Every keyword of every language classifies as itself.
        for l in [Language::Es, Language::Pt, Language::En] {
            let (out, in_) = keywords(l);
            for w in out {
                assert_eq!(classify_keyword(&w.to_uppercase()), Some(OptOut), "{w}");
            }
            for w in in_ {
                assert_eq!(classify_keyword(w), Some(OptIn), "{w}");
            }
        }
    }
}
