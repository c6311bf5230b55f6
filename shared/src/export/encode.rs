//! The file formats. CSV and JSON Lines encode into a buffer the caller drains into the upload
//! as it goes; XLSX (rust_xlsxwriter in constant-memory mode) keeps rows in temporary files and
//! writes the whole workbook at the end, through any `Write`. Memory stays flat whatever the
//! row count.
//!
//! Text that the CRM or an API caller chose is written so that a spreadsheet shows it as text:
//! CSV puts a `'` before text that starts like a formula (`csv_text`), XLSX writes it as a
//! string cell, cut to Excel's longest text (`xlsx_text`). JSON Lines is data, left as it is.

use std::borrow::Cow;
use std::io::Write;

use super::job::Format;
use super::rows::Cell;

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("XLSX: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    #[error("writing: {0}")]
    Io(#[from] std::io::Error),
}

/// Excel's rows per worksheet; longer exports go on to another sheet (with the header again).
pub const XLSX_MAX_ROWS: u32 = 1_048_576;

/// Excel's longest text cell, in UTF-16 code units: what Excel and rust_xlsxwriter count.
pub const XLSX_MAX_TEXT: usize = 32_767;

/// Ends a text cut to fit Excel, so a reader sees it was cut.
pub const TRUNCATED: char = '…';

/// The first characters that make a spreadsheet read a CSV cell as a formula (OWASP, CSV
/// injection).
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A text cell for CSV: one that starts like a formula gets a leading `'`, so a spreadsheet
/// shows it instead of running it. Only text cells: amounts and counts are numbers the
/// exporter formats, and a negative one must stay a number.
pub fn csv_text(s: &str) -> Cow<'_, str> {
    if s.starts_with(FORMULA_STARTS) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// A text cell for XLSX: as it is if Excel can hold it, else cut (on a character) to Excel's
/// limit, ending in `…`. rust_xlsxwriter refuses a longer string, which would fail the export.
pub fn xlsx_text(s: &str) -> Cow<'_, str> {
    // A character takes at most as many UTF-16 units as UTF-8 bytes: short text needs no count.
    if s.len() <= XLSX_MAX_TEXT || s.encode_utf16().count() <= XLSX_MAX_TEXT {
        return Cow::Borrowed(s);
    }
    let room = XLSX_MAX_TEXT - TRUNCATED.len_utf16();
    let mut units = 0;
    let end = s
        .char_indices()
        .find(|(_, c)| {
            units += c.len_utf16();
            units > room
        })
        .map_or(s.len(), |(i, _)| i);
    Cow::Owned(format!("{}{TRUNCATED}", &s[..end]))
}

/// The CSV writer. `comment` only makes it quote every field holding a `;`: a spreadsheet set
/// to split on `;` (Spanish and Chilean locales) keeps such a field one cell, so text after a
/// `;` cannot start a cell of its own (and a formula there).
fn csv_writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .comment(Some(b';'))
        .from_writer(Vec::with_capacity(1 << 16))
}

fn csv_field(cell: &Cell) -> Cow<'_, str> {
    match cell {
        Cell::Text(s) => csv_text(s),
        other => Cow::Owned(other.to_text()),
    }
}

pub enum Encoder {
    Csv(Box<csv::Writer<Vec<u8>>>),
    Jsonl {
        columns: &'static [&'static str],
        buffer: Vec<u8>,
    },
    Xlsx(Box<Xlsx>),
}

pub struct Xlsx {
    workbook: rust_xlsxwriter::Workbook,
    columns: &'static [&'static str],
    sheet: usize,
    /// The next row to write on the current sheet.
    row: u32,
    bold: rust_xlsxwriter::Format,
    /// Number formats by currency exponent (0 and 2 decimals).
    amounts: [rust_xlsxwriter::Format; 3],
}

impl Encoder {
    /// An encoder with the header written. `tempdir`: where XLSX keeps its rows until the end.
    pub fn new(
        format: Format,
        columns: &'static [&'static str],
        tempdir: &std::path::Path,
    ) -> Result<Self, EncodeError> {
        match format {
            Format::Csv => {
                let mut w = csv_writer();
                w.write_record(columns)?;
                Ok(Encoder::Csv(Box::new(w)))
            }
            Format::Jsonl => Ok(Encoder::Jsonl {
                columns,
                buffer: Vec::with_capacity(1 << 16),
            }),
            Format::Xlsx => {
                let mut workbook = rust_xlsxwriter::Workbook::new();
                workbook.set_tempdir(tempdir)?;
                let amount = |f: &str| rust_xlsxwriter::Format::new().set_num_format(f);
                let mut x = Xlsx {
                    workbook,
                    columns,
                    sheet: 0,
                    row: 0,
                    bold: rust_xlsxwriter::Format::new().set_bold(),
                    amounts: [amount("0"), amount("0.0"), amount("0.00")],
                };
                x.new_sheet()?;
                Ok(Encoder::Xlsx(Box::new(x)))
            }
        }
    }

    pub fn row(&mut self, cells: &[Cell]) -> Result<(), EncodeError> {
        match self {
            Encoder::Csv(w) => {
                for cell in cells {
                    w.write_field(csv_field(cell).as_bytes())?;
                }
                // Ends the record the fields above began.
                w.write_record(None::<&[u8]>)?;
                Ok(())
            }
            Encoder::Jsonl { columns, buffer } => {
                let object: serde_json::Map<String, serde_json::Value> = columns
                    .iter()
                    .zip(cells)
                    .map(|(name, cell)| {
                        let v = match cell {
                            Cell::Int(n) => (*n).into(),
                            Cell::Empty => serde_json::Value::Null,
                            other => other.to_text().into(),
                        };
                        ((*name).to_string(), v)
                    })
                    .collect();
                serde_json::to_writer(&mut *buffer, &object).map_err(std::io::Error::from)?;
                buffer.push(b'\n');
                Ok(())
            }
            Encoder::Xlsx(x) => x.row(cells),
        }
    }

    /// Bytes ready to upload, taken out of the encoder (none for XLSX until `finish_xlsx`).
    pub fn take(&mut self) -> Result<Vec<u8>, EncodeError> {
        match self {
            Encoder::Csv(w) => {
                // A fresh writer takes over (the header is written once, at the start).
                let full = std::mem::replace(w.as_mut(), csv_writer());
                full.into_inner()
                    .map_err(|e| EncodeError::Io(e.into_error()))
            }
            Encoder::Jsonl { buffer, .. } => Ok(std::mem::take(buffer)),
            Encoder::Xlsx(_) => Ok(Vec::new()),
        }
    }

    /// How much `take` would return now (an estimate for CSV, whose writer buffers a little).
    pub fn buffered(&self) -> usize {
        match self {
            Encoder::Csv(w) => w.get_ref().len(),
            Encoder::Jsonl { buffer, .. } => buffer.len(),
            Encoder::Xlsx(_) => 0,
        }
    }
}

impl Xlsx {
    fn new_sheet(&mut self) -> Result<(), EncodeError> {
        self.sheet = self.workbook.worksheets().len();
        let sheet = self.workbook.add_worksheet_with_constant_memory()?;
        for (i, name) in self.columns.iter().enumerate() {
            sheet.write_string_with_format(0, i as u16, *name, &self.bold)?;
        }
        self.row = 1;
        Ok(())
    }

    fn row(&mut self, cells: &[Cell]) -> Result<(), EncodeError> {
        if self.row >= XLSX_MAX_ROWS {
            self.new_sheet()?;
        }
        let r = self.row;
        let sheet = self.workbook.worksheet_from_index(self.sheet)?;
        for (i, cell) in cells.iter().enumerate() {
            let col = i as u16;
            match cell {
                // A string cell, never a formula: no `'` needed, unlike CSV.
                Cell::Text(s) => {
                    sheet.write_string(r, col, xlsx_text(s))?;
                }
                Cell::Int(n) => {
                    sheet.write_number(r, col, *n as f64)?;
                }
                // A number, so a spreadsheet can add it up; shown with the currency's decimals.
                // Doubles hold every amount below 2^53 minor units exactly enough to display.
                Cell::Amount { minor, currency } => {
                    let e = usize::from(currency.exponent()).min(2);
                    let value = *minor as f64 / 10f64.powi(e as i32);
                    sheet.write_number_with_format(r, col, value, &self.amounts[e])?;
                }
                Cell::Empty => {}
            }
        }
        self.row += 1;
        Ok(())
    }

    /// Writes the workbook to `out` (blocking: call it off the async runtime).
    pub fn save_to(mut self, out: impl Write + Send) -> Result<(), EncodeError> {
        self.workbook.save_to_writer(out)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Currency;

    fn rows() -> Vec<Vec<Cell>> {
        let eur = Currency::parse("EUR").unwrap();
        vec![
            vec![
                Cell::text("a,\"b\""),
                Cell::Int(3),
                Cell::Amount {
                    minor: 105,
                    currency: eur,
                },
            ],
            vec![
                Cell::Empty,
                Cell::Int(-1),
                Cell::Amount {
                    minor: -2,
                    currency: eur,
                },
            ],
        ]
    }

    const COLS: &[&str] = &["name", "n", "amount"];

    #[test]
    fn csv_quotes_and_formats_amounts() {
        let dir = std::env::temp_dir();
        let mut e = Encoder::new(Format::Csv, COLS, &dir).unwrap();
        for r in rows() {
            e.row(&r).unwrap();
        }
        let text = String::from_utf8(e.take().unwrap()).unwrap();
        assert_eq!(text, "name,n,amount\n\"a,\"\"b\"\"\",3,1.05\n,-1,-0.02\n");
        assert!(e.take().unwrap().is_empty());
    }

    #[test]
    fn jsonl_writes_one_object_per_line() {
        let dir = std::env::temp_dir();
        let mut e = Encoder::new(Format::Jsonl, COLS, &dir).unwrap();
        for r in rows() {
            e.row(&r).unwrap();
        }
        let text = String::from_utf8(e.take().unwrap()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines[0],
            serde_json::json!({"name": "a,\"b\"", "n": 3, "amount": "1.05"})
        );
        assert_eq!(
            lines[1],
            serde_json::json!({"name": null, "n": -1, "amount": "-0.02"})
        );
    }

    fn csv_of(rows: &[Vec<Cell>]) -> String {
        let mut e = Encoder::new(Format::Csv, COLS, &std::env::temp_dir()).unwrap();
        for r in rows {
            e.row(r).unwrap();
        }
        String::from_utf8(e.take().unwrap()).unwrap()
    }

    fn read_csv(text: &str) -> Vec<Vec<String>> {
        csv::Reader::from_reader(text.as_bytes())
            .records()
            .map(|r| r.unwrap().iter().map(String::from).collect())
            .collect()
    }

    #[test]
    fn csv_puts_a_quote_before_text_that_starts_like_a_formula() {
        let eur = Currency::parse("EUR").unwrap();
        let formulas = [
            "=HYPERLINK(\"http://x\",\"ok\")",
            "+1",
            "-1",
            "@SUM(A1)",
            "\tx",
            "\rx",
        ];
        let rows: Vec<Vec<Cell>> = formulas
            .iter()
            .map(|f| {
                vec![
                    Cell::text(*f),
                    Cell::Int(-1),
                    Cell::Amount {
                        minor: -2,
                        currency: eur,
                    },
                ]
            })
            .collect();
        let read = read_csv(&csv_of(&rows));
        for (f, row) in formulas.iter().zip(&read) {
            assert_eq!(row[0], format!("'{f}"));
            // Numbers the exporter writes stay numbers, negative ones included.
            assert_eq!(row[1..], ["-1", "-0.02"]);
        }
        // Harmless text is left alone.
        let plain = vec![vec![Cell::text("a=b"), Cell::text("1-30"), Cell::Empty]];
        assert_eq!(csv_of(&plain), "name,n,amount\na=b,1-30,\n");
    }

    #[test]
    fn csv_quotes_text_holding_a_semicolon() {
        let rows = vec![vec![Cell::text("vip;=cmd"), Cell::Int(1), Cell::Empty]];
        assert_eq!(csv_of(&rows), "name,n,amount\n\"vip;=cmd\",1,\n");
    }

    #[test]
    fn jsonl_keeps_text_that_starts_like_a_formula() {
        let dir = std::env::temp_dir();
        let mut e = Encoder::new(Format::Jsonl, COLS, &dir).unwrap();
        e.row(&[Cell::text("=1+1"), Cell::Int(1), Cell::Empty])
            .unwrap();
        let line: serde_json::Value = serde_json::from_slice(&e.take().unwrap()).unwrap();
        assert_eq!(line["name"], "=1+1");
    }

    #[test]
    fn xlsx_is_a_zip_with_a_sheet() {
        let dir = std::env::temp_dir();
        let mut e = Encoder::new(Format::Xlsx, COLS, &dir).unwrap();
        for r in rows() {
            e.row(&r).unwrap();
        }
        let Encoder::Xlsx(x) = e else { unreachable!() };
        let mut out = Vec::new();
        x.save_to(&mut out).unwrap();
        assert_eq!(&out[..2], b"PK");
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("xl/worksheets/sheet1.xml"));
    }

    #[test]
    fn xlsx_text_is_cut_to_what_excel_holds() {
        let short = "x".repeat(XLSX_MAX_TEXT);
        assert!(matches!(xlsx_text(&short), Cow::Borrowed(_)));
        let long = "x".repeat(40_000);
        let cut = xlsx_text(&long);
        assert_eq!(cut.encode_utf16().count(), XLSX_MAX_TEXT);
        assert!(cut.ends_with(TRUNCATED));
        assert!(long.starts_with(cut.trim_end_matches(TRUNCATED)));
        // A character of two UTF-16 units is never split, and never overruns the limit.
        let emoji = format!("{}{}", "x".repeat(XLSX_MAX_TEXT - 2), "😀".repeat(10));
        let cut = xlsx_text(&emoji);
        assert_eq!(cut.encode_utf16().count(), XLSX_MAX_TEXT - 1);
        assert_eq!(cut, format!("{}…", "x".repeat(XLSX_MAX_TEXT - 2)));
        // Counted in UTF-16 units, as Excel counts: `é` is two bytes but one unit.
        let accents = "é".repeat(XLSX_MAX_TEXT);
        assert!(matches!(xlsx_text(&accents), Cow::Borrowed(_)));
    }

    #[test]
    fn xlsx_writes_text_longer_than_excel_holds() {
        let dir = std::env::temp_dir();
        let mut e = Encoder::new(Format::Xlsx, COLS, &dir).unwrap();
        e.row(&[Cell::text("x".repeat(40_000)), Cell::Int(1), Cell::Empty])
            .unwrap();
        let Encoder::Xlsx(x) = e else { unreachable!() };
        x.save_to(Vec::new()).unwrap();
    }
}
