//! Dates as debtors write them: "15/12", "15-12-2026", "2026-12-15", "mañana", "el viernes",
//! "dia 20", "en 3 días", in Spanish, Portuguese or English. Day first, except an English
//! "12/15" that can only be month first.

use jiff::civil::{Date, Weekday};
use jiff::ToSpan;

use super::text::{normalize, same_word, words};
use crate::domain::Language;

const WEEKDAYS: [(Weekday, &[&str]); 7] = [
    (Weekday::Monday, &["lunes", "segunda", "monday"]),
    (Weekday::Tuesday, &["martes", "terca", "tuesday"]),
    (Weekday::Wednesday, &["miercoles", "quarta", "wednesday"]),
    (Weekday::Thursday, &["jueves", "quinta", "thursday"]),
    (Weekday::Friday, &["viernes", "sexta", "friday"]),
    (Weekday::Saturday, &["sabado", "saturday"]),
    (Weekday::Sunday, &["domingo", "sunday"]),
];

/// The date the text names, on or after `today`; `None` when it names none.
pub fn parse(text: &str, today: Date, language: Language) -> Option<Date> {
    let n = normalize(text);
    let w = words(&n);
    if let Some(d) = numeric(text, today, language) {
        return Some(d);
    }
    let has = |options: &[&str]| w.iter().any(|x| options.iter().any(|o| same_word(x, o)));
    if w.windows(2)
        .any(|p| p == ["pasado", "manana"] || p == ["depois", "amanha"])
    {
        return today.checked_add(2.days()).ok();
    }
    if has(&["hoy", "hoje", "today"]) {
        return Some(today);
    }
    if has(&["manana", "amanha", "tomorrow"]) {
        return today.checked_add(1.days()).ok();
    }
    // "en 3 días", "em 5 dias", "in 10 days".
    for p in w.windows(3) {
        if ["en", "em", "in"].contains(&p[0]) && ["dias", "days", "dia", "day"].contains(&p[2]) {
            if let Ok(k) = p[1].parse::<i64>() {
                return today.checked_add(k.days()).ok();
            }
        }
    }
    for (weekday, names) in WEEKDAYS {
        if has(names) {
            // The next such day, a week on if it is today's.
            let mut d = today.checked_add(1.day()).ok()?;
            while d.weekday() != weekday {
                d = d.checked_add(1.day()).ok()?;
            }
            return Some(d);
        }
    }
    // "el 20", "dia 20", "on the 20th": that day of this month, else of the next.
    for p in w.windows(2) {
        if ["el", "dia", "the", "on"].contains(&p[0]) {
            let digits: String = p[1].chars().take_while(char::is_ascii_digit).collect();
            if let Ok(day) = digits.parse::<i8>() {
                return day_of_month(today, day);
            }
        }
    }
    None
}

fn day_of_month(today: Date, day: i8) -> Option<Date> {
    if !(1..=31).contains(&day) {
        return None;
    }
    let this = Date::new(today.year(), today.month(), day).ok();
    match this {
        Some(d) if d >= today => Some(d),
        _ => {
            let next = today.first_of_month().checked_add(1.month()).ok()?;
            Date::new(next.year(), next.month(), day).ok()
        }
    }
}

fn numeric(text: &str, today: Date, language: Language) -> Option<Date> {
    let token = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .find(|t| t.contains('/') || (t.contains('-') && t.chars().any(|c| c.is_ascii_digit())))?;
    let token = token.trim_matches(|c: char| !c.is_ascii_digit());
    let parts: Vec<i32> = token
        .split(['/', '-', '.'])
        .map(|p| p.parse::<i32>())
        .collect::<Result<_, _>>()
        .ok()?;
    let (day, month, year) = match parts.as_slice() {
        [y, m, d] if *y > 31 => (*d, *m, *y),
        [a, b, y] => {
            let (d, m) = day_month(*a, *b, language)?;
            (d, m, if *y < 100 { 2000 + *y } else { *y })
        }
        [a, b] => {
            let (d, m) = day_month(*a, *b, language)?;
            let this = Date::new(today.year(), m as i8, d as i8).ok()?;
            let year = if this < today {
                today.year() as i32 + 1
            } else {
                today.year() as i32
            };
            (d, m, year)
        }
        _ => return None,
    };
    Date::new(
        i16::try_from(year).ok()?,
        i8::try_from(month).ok()?,
        i8::try_from(day).ok()?,
    )
    .ok()
}

fn day_month(a: i32, b: i32, language: Language) -> Option<(i32, i32)> {
    let month_first = language == Language::En && a <= 12 && b > 12;
    match (month_first, a <= 12, b <= 12) {
        (true, _, _) => Some((b, a)),
        (false, _, true) => Some((a, b)),
        (false, true, false) => Some((b, a)),
        _ => None,
    }
}

/// An example date for a prompt, as the debtor's language writes it.
pub fn example(d: Date, language: Language) -> String {
    match language {
        Language::En => format!("{}/{}", d.month(), d.day()),
        _ => format!("{}/{}", d.day(), d.month()),
    }
}

/// A date as the debtor reads it.
pub fn show(d: Date, language: Language) -> String {
    match language {
        Language::En => d.strftime("%B %-d, %Y").to_string(),
        _ => format!("{:02}/{:02}/{}", d.day(), d.month(), d.year()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    // A Wednesday.
    const TODAY: Date = date(2026, 11, 25);

    #[test]
    fn written_dates() {
        let es = Language::Es;
        assert_eq!(parse("15/12", TODAY, es), Some(date(2026, 12, 15)));
        assert_eq!(parse("el 15/12/2026", TODAY, es), Some(date(2026, 12, 15)));
        assert_eq!(parse("2026-12-01", TODAY, es), Some(date(2026, 12, 1)));
        assert_eq!(parse("3/1", TODAY, es), Some(date(2027, 1, 3)));
        assert_eq!(
            parse("12/15", TODAY, Language::En),
            Some(date(2026, 12, 15))
        );
        assert_eq!(
            parse("15/12/26", TODAY, Language::Pt),
            Some(date(2026, 12, 15))
        );
        assert_eq!(parse("31/02", TODAY, es), None);
    }

    #[test]
    fn words_for_days() {
        assert_eq!(
            parse("mañana", TODAY, Language::Es),
            Some(date(2026, 11, 26))
        );
        assert_eq!(
            parse("amanhã", TODAY, Language::Pt),
            Some(date(2026, 11, 26))
        );
        assert_eq!(
            parse("pasado mañana", TODAY, Language::Es),
            Some(date(2026, 11, 27))
        );
        assert_eq!(parse("hoy", TODAY, Language::Es), Some(TODAY));
        assert_eq!(
            parse("el viernes", TODAY, Language::Es),
            Some(date(2026, 11, 27))
        );
        assert_eq!(
            parse("na sexta", TODAY, Language::Pt),
            Some(date(2026, 11, 27))
        );
        assert_eq!(
            parse("next wednesday", TODAY, Language::En),
            Some(date(2026, 12, 2))
        );
        assert_eq!(
            parse("en 3 días", TODAY, Language::Es),
            Some(date(2026, 11, 28))
        );
        assert_eq!(
            parse("in 10 days", TODAY, Language::En),
            Some(date(2026, 12, 5))
        );
        assert_eq!(
            parse("el 30", TODAY, Language::Es),
            Some(date(2026, 11, 30))
        );
        assert_eq!(
            parse("dia 20", TODAY, Language::Pt),
            Some(date(2026, 12, 20))
        );
        assert_eq!(
            parse("on the 5th", TODAY, Language::En),
            Some(date(2026, 12, 5))
        );
        assert_eq!(parse("no sé", TODAY, Language::Es), None);
    }
}
