//! What the debtor typed, made comparable: no accents, no case, no punctuation, and words that
//! match despite a typo. Debtors write on phones, in a hurry, often without accents.

use unicode_normalization::UnicodeNormalization;

/// Lower case, accents and punctuation removed, single spaces: "¡Quiero PAGAR ya!" → "quiero
/// pagar ya". Digits are kept (dates, amounts, the last digits of an id).
pub fn normalize(text: &str) -> String {
    let folded: String = text
        .nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The words of normalized text.
pub fn words(normalized: &str) -> Vec<&str> {
    normalized.split(' ').filter(|w| !w.is_empty()).collect()
}

/// Two words are the same allowing one typo in words of six letters or more, two in words of
/// ten or more; shorter words must match exactly ("no" is not "yo", "vida" is not "viuda").
pub fn same_word(typed: &str, known: &str) -> bool {
    if typed == known {
        return true;
    }
    // Normalized words are ASCII nearly always, so byte lengths are letter counts; the
    // distance is computed only for words whose lengths allow a match (most do not).
    let allowed = match known.len() {
        0..=5 => return false,
        6..=9 => 1,
        _ => 2,
    };
    typed.len().abs_diff(known.len()) <= allowed && strsim::osa_distance(typed, known) <= allowed
}

/// Whether the phrase's words appear one after another in the text's words, each allowing a
/// typo. A phrase ending in `*` matches any word starting with it ("desemplead*").
pub fn contains_phrase(text_words: &[&str], phrase: &str) -> bool {
    let phrase_words: Vec<&str> = phrase.split(' ').filter(|w| !w.is_empty()).collect();
    contains_words(text_words, &phrase_words)
}

/// `contains_phrase` on a phrase already split into words (the lexicons are, once).
pub fn contains_words<S: AsRef<str>>(text_words: &[&str], phrase_words: &[S]) -> bool {
    if phrase_words.is_empty() || phrase_words.len() > text_words.len() {
        return false;
    }
    text_words.windows(phrase_words.len()).any(|window| {
        window.iter().zip(phrase_words).all(|(typed, known)| {
            let known = known.as_ref();
            match known.strip_suffix('*') {
                Some(stem) => {
                    typed.starts_with(stem) || {
                        // A typo inside the stem: compare the typed word's first letters.
                        let head: String = typed.chars().take(stem.chars().count()).collect();
                        head.chars().count() == stem.chars().count() && same_word(&head, stem)
                    }
                }
                None => same_word(typed, known),
            }
        })
    })
}

/// `contains_words` without typos: every word as written, a stem only as a prefix. For
/// phrases whose near misses mean something else ("personal" is not "persona", "contesta" is
/// not "contestar").
pub fn contains_words_exact<S: AsRef<str>>(text_words: &[&str], phrase_words: &[S]) -> bool {
    if phrase_words.is_empty() || phrase_words.len() > text_words.len() {
        return false;
    }
    text_words.windows(phrase_words.len()).any(|window| {
        window.iter().zip(phrase_words).all(|(typed, known)| {
            let known = known.as_ref();
            match known.strip_suffix('*') {
                Some(stem) => typed.starts_with(stem),
                None => *typed == known,
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accents_case_and_punctuation_go() {
        assert_eq!(normalize("¡Quiero PAGAR ya!"), "quiero pagar ya");
        assert_eq!(normalize("Não me contatem."), "nao me contatem");
        assert_eq!(normalize("  perdí   el\ttrabajo "), "perdi el trabajo");
        assert_eq!(normalize("1234"), "1234");
    }

    #[test]
    fn one_typo_is_forgiven_in_long_words_only() {
        assert!(!same_word("sldo", "saldo"));
        assert!(!same_word("vida", "viuda"));
        assert!(same_word("acuedro", "acuerdo"));
        assert!(same_word("trabajp", "trabajo"));
        assert!(!same_word("yo", "no"));
        assert!(!same_word("pago", "pega"));
        assert!(same_word("desempleado", "desempelado"));
    }

    #[test]
    fn phrases_match_in_order_with_stems() {
        let n = normalize("Me quedé desempleada hace un mes");
        let w = words(&n);
        assert!(contains_phrase(&w, "desemplead*"));
        assert!(contains_phrase(&["desenpleado"], "desemplead*"));
        assert!(!contains_phrase(&["desde"], "desemplead*"));
        assert!(contains_phrase(&w, "me quede"));
        assert!(!contains_phrase(&w, "quede me"));
        assert!(!contains_phrase(&w, ""));
    }
}
