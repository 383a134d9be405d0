//! The `render` step in the pipeline: built from YAML-shaped config, run on files.

use std::path::PathBuf;

use serde_json::json;

use crate::config::Problem;
use crate::config::raw_steps::{OnInvalid, RawStep};
use crate::steps::{Cause, Causes, Processed, RecordCounts, Source, Steps, build, quarantine};
use crate::template::NameVars;

struct Bench {
    dir: tempfile::TempDir,
}

impl Bench {
    fn new() -> Bench {
        Bench { dir: tempfile::tempdir().unwrap() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn file(&self, name: &str, text: &str) -> &Self {
        let p = self.path(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        self
    }

    fn try_steps(&self, yaml: &str, on_invalid: OnInvalid) -> Result<Steps, Vec<Problem>> {
        let raw: Vec<RawStep> = serde_json::from_value(serde_yaml::from_str(yaml).unwrap()).unwrap();
        build(&raw, on_invalid, None, self.dir.path())
    }

    fn steps(&self, yaml: &str) -> Steps {
        self.try_steps(yaml, OnInvalid::Quarantine).unwrap_or_else(|p| panic!("{p:#?}"))
    }

    fn problems(&self, yaml: &str) -> Vec<String> {
        self.try_steps(yaml, OnInvalid::Quarantine).unwrap_err().into_iter().map(|p| format!("{}: {}", p.yaml_path, p.message)).collect()
    }

    fn run(&self, steps: &Steps, name: &str, body: &[u8]) -> Processed {
        // 2026-01-05 10:00:00 UTC, run 42.
        let vars = NameVars::new(name, "", body.len() as u64, 42, std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_767_607_200));
        crate::steps::tests::run_in(self.dir.path(), steps, name, body, &vars)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap()
    }
}

const PRICES: &[u8] = b"sku;name;price;qty\nA-1;Schraube M6;12.10;100\nB-22;Mutter \"rund\";0.2;5\nC-333;Scheibe;3;12\n";

fn fixed_width(b: &Bench) {
    b.file("t/header.txt.hbs", "H{{pad file.stem 12}}{{date file.date \"YYYYMMDD\"}}{{now \"HHmm\"}}\n")
        .file("t/row.txt.hbs", "D{{pad record.sku 6}}{{pad (upper record.name) 10}}{{lpad (number record.price) 9 fill=\"0\"}}\n")
        .file("t/footer.txt.hbs", "T{{lpad count 6 fill=\"0\"}}{{lpad sums.price 10}}{{lpad sums.qty 6}}\n");
}

const FIXED_STEPS: &str = "- parse: { format: csv, delimiter: ';' }\n\
     - render: { header: t/header.txt.hbs, row: t/row.txt.hbs, footer: t/footer.txt.hbs, sums: [price, qty] }";

#[test]
fn header_rows_and_footer_make_a_fixed_width_file_with_count_and_exact_sums() {
    let b = Bench::new();
    fixed_width(&b);
    let steps = b.steps(FIXED_STEPS);
    assert_eq!(steps.output_ext(), Some("txt"));
    let p = b.run(&steps, "prices_0105.csv", PRICES);
    assert_eq!(p.quarantine, None);
    assert_eq!(p.counts, RecordCounts { read: 3, valid: 3, rejected: 0, skipped: 0, written: 3 });
    assert_eq!(
        b.read("out"),
        "Hprices_0105 202601051000\n\
         DA-1   SCHRAUBE M000012.10\n\
         DB-22  MUTTER \"RU000000.20\n\
         DC-333 SCHEIBE   000003.00\n\
         T000003     15.30   117\n"
    );
    assert_eq!(p.output, Some(b.read("out").len() as u64));
    // No records: the header and a zero trailer are still written.
    let p = b.run(&steps, "empty.csv", b"sku;name;price;qty\n");
    assert_eq!(p.quarantine, None);
    assert_eq!(b.read("out"), "Hempty       202601051000\nT000000         0     0\n");
}

#[test]
fn a_missing_field_rejects_the_record_naming_the_template_line() {
    let b = Bench::new();
    b.file("row.txt.hbs", "{{record.sku}};\n  {{record.colour}}\n");
    let yaml = "- parse: { format: csv, delimiter: ';' }\n- render: { row: row.txt.hbs }";
    let p = b.run(&b.steps(yaml), "p.csv", PRICES);
    let v = p.quarantine.expect("quarantined by on_invalid: quarantine");
    assert_eq!(v.reason, "3 of 3 records are invalid (on_invalid: quarantine)");
    assert_eq!(
        v.errors[0].to_string(),
        "row 1 (line 2): row.txt.hbs line 2, col 3: `record.colour` is missing (templates are strict: write \
         `{{#if record.colour}}…{{/if}}` or `{{default record.colour \"\"}}` for an optional field)"
    );
    assert!(!b.path("out").exists());
    // A field misspelt is told the record's field it is close to (before, only "missing").
    b.file("row.txt.hbs", "{{record.sku}};{{record.prise}}\n");
    let p = b.run(&b.steps(yaml), "p.csv", PRICES);
    let v = p.quarantine.expect("quarantined by on_invalid: quarantine");
    assert!(v.errors[0].to_string().ends_with("for an optional field) (did you mean `record.price`?)"), "{}", v.errors[0]);
    b.file("row.txt.hbs", "{{record.sku}};\n  {{record.colour}}\n");
    // With `skip`: the bad record goes to the rejects file and leaves nothing in the output.
    b.file("row.txt.hbs", "{{record.sku}};{{#if (trim record.qty)}}{{record.qty}}{{/if}}{{lpad record.price 3}}\n");
    let steps = b.try_steps(yaml, OnInvalid::Skip).unwrap();
    let p = b.run(&steps, "p.csv", b"sku;price;qty\nA;1;2\nB;x;\nC;3;4\n");
    assert_eq!((p.quarantine, p.counts.rejected, p.counts.written), (None, 0, 3));
    b.file("row.txt.hbs", "{{record.sku}};{{pad record.price record.qty}}\n");
    let steps = b.try_steps(yaml, OnInvalid::Skip).unwrap();
    let p = b.run(&steps, "p.csv", b"sku;price;qty\nA;1;2\nB;7;x\nC;3;4\n");
    assert_eq!(p.counts, RecordCounts { read: 3, valid: 2, rejected: 1, skipped: 0, written: 2 });
    assert_eq!(b.read("out"), "A;1 \nC;3   \n");
    let rejects = b.read("rejects");
    assert!(
        rejects.contains(
            "\n2;3;\"row.txt.hbs line 1, col 16: `pad`: the width must be a whole number from 0 to 65536, not \"\"x\"\"\";B;7;x\n"
        ),
        "{rejects}"
    );
}

#[test]
fn a_summed_field_that_is_not_a_number_is_a_record_error_and_is_not_counted() {
    let b = Bench::new();
    b.file("row.csv.hbs", "{{record.sku}}\n").file("footer.hbs", "{{count}};{{sums.price}}\n");
    let yaml = "- parse: { format: csv, delimiter: ';' }\n- render: { row: row.csv.hbs, footer: footer.hbs, sums: [price] }";
    let steps = b.try_steps(yaml, OnInvalid::Skip).unwrap();
    let p = b.run(&steps, "p.csv", b"sku;price\nA;1.5\nB;zwei\nC;\nD;-0.25\n");
    assert_eq!(p.counts, RecordCounts { read: 4, valid: 3, rejected: 1, skipped: 0, written: 3 });
    assert_eq!(b.read("out"), "A\nC\nD\n3;1.25\n");
    assert!(b.read("rejects").contains("price: \"\"zwei\"\" is not a number (a field in `sums`)"), "{}", b.read("rejects"));
}

/// `escape: none` (the default) on XML or HTML output is a warning naming the escape to set
/// (before: nothing, and a `&` in a record made a broken document); other outputs, or an
/// escape set, say nothing.
#[test]
fn xml_or_html_output_without_escaping_is_warned_about() {
    let b = Bench::new();
    b.file("doc.xml.hbs", "<a>{{count}}</a>\n").file("row.htm.hbs", "<p>{{record.a}}</p>\n").file("row.txt.hbs", "{{record.a}}\n");
    let warned = |yaml: &str| b.steps(&format!("- parse: {{ format: csv }}\n- render: {{ {yaml} }}")).warnings();
    assert_eq!(
        warned("template: doc.xml.hbs"),
        [(
            "/steps/1/render".to_string(),
            "the output is `.xml` but `escape` is `none`: a `&` or `<` in a value would make broken XML; set `escape: xml` \
             (`{{{value}}}` still writes a value as it is)"
                .to_string()
        )]
    );
    let html = warned("row: row.htm.hbs, escape: none");
    assert!(html.len() == 1 && html[0].1.starts_with("the output is `.htm` but") && html[0].1.contains("set `escape: html`"), "{html:?}");
    assert!(warned("row: row.txt.hbs, extension: HTML")[0].1.contains("broken HTML"));
    assert_eq!(warned("template: doc.xml.hbs, escape: xml"), []);
    assert_eq!(warned("row: row.htm.hbs, escape: html"), []);
    assert_eq!(warned("row: row.txt.hbs"), []);
}

#[test]
fn a_whole_document_sees_every_record_with_count_and_sums() {
    let b = Bench::new();
    b.file(
        "pricelist.xml.hbs",
        "<?xml version=\"1.0\"?>\n<pricelist file=\"{{file.name}}\" run=\"{{file.run}}\" items=\"{{count}}\">\n\
         {{#each records}}\n  <item sku=\"{{sku}}\" n=\"{{@index}}\">{{name}}: {{number price decimal=\",\"}}</item>\n{{/each}}\n\
         <total>{{sums.price}}</total><check>{{sum records \"qty\"}}/{{count records}}</check>\n</pricelist>\n",
    );
    let steps = b.steps("- parse: { format: csv, delimiter: ';' }\n- render: { template: pricelist.xml.hbs, escape: xml, sums: [price] }");
    assert_eq!(steps.output_ext(), Some("xml"));
    let p = b.run(&steps, "prices.csv", PRICES);
    assert_eq!((p.quarantine, p.counts.written), (None, 3));
    assert_eq!(
        b.read("out"),
        "<?xml version=\"1.0\"?>\n<pricelist file=\"prices.csv\" run=\"42\" items=\"3\">\n\
         \x20 <item sku=\"A-1\" n=\"0\">Schraube M6: 12,10</item>\n\
         \x20 <item sku=\"B-22\" n=\"1\">Mutter &quot;rund&quot;: 0,20</item>\n\
         \x20 <item sku=\"C-333\" n=\"2\">Scheibe: 3,00</item>\n\
         <total>15.30</total><check>117/3</check>\n</pricelist>\n"
    );
}

#[test]
fn a_whole_document_is_capped_and_points_to_row_templates() {
    let b = Bench::new();
    b.file("all.json.hbs", "{{count}}\n");
    let steps = b.steps("- parse: { format: csv, delimiter: ';' }\n- render: { template: all.json.hbs, max_records: 2 }");
    let p = b.run(&steps, "p.csv", PRICES);
    let v = p.quarantine.expect("quarantined");
    assert!(
        v.reason.starts_with("more than 2 records: a whole-document `template` holds every record in memory; use `header`/`row`/`footer`"),
        "{}",
        v.reason
    );
    assert_eq!(p.counts.read, 3, "reading stopped at the record past the cap");
    assert!(!b.path("out").exists());
    let p = b.run(&steps, "p.csv", b"sku;name;price;qty\nA;a;1;1\n");
    assert_eq!((p.quarantine, b.read("out")), (None, "1\n".to_string()));
}

#[test]
fn a_footer_or_document_that_fails_quarantines_the_file() {
    let b = Bench::new();
    b.file("row.txt.hbs", "{{record.sku}}\n").file("footer.txt.hbs", "T{{sums.nope}}\n");
    let steps = b.steps("- parse: { format: csv, delimiter: ';' }\n- render: { row: row.txt.hbs, footer: footer.txt.hbs }");
    let v = b.run(&steps, "p.csv", PRICES).quarantine.expect("quarantined");
    assert!(v.reason.starts_with("footer.txt.hbs line 1, col 2: `sums.nope` is missing"), "{}", v.reason);
    assert!(!b.path("out").exists());
}

/// A byte-order mark a Windows editor saved: a header's starts the file, as a partner taking
/// UTF-8 with a mark wants; a row's or footer's was written before every record and before
/// the trailer, inside the file.
#[test]
fn a_byte_order_mark_is_kept_at_the_file_s_start_only() {
    let b = Bench::new();
    b.file("h.txt.hbs", "\u{feff}HEAD\n").file("r.txt.hbs", "\u{feff}{{record.sku}}\n").file("f.txt.hbs", "\u{feff}T;{{count}}\n");
    let steps = b.steps("- parse: { format: csv }\n- render: { header: h.txt.hbs, row: r.txt.hbs, footer: f.txt.hbs }");
    b.run(&steps, "p.csv", b"sku\nA\nB\n");
    assert_eq!(b.read("out"), "\u{feff}HEAD\nA\nB\nT;2\n");
    b.file("d.txt.hbs", "\u{feff}{{#each records}}{{sku}}{{/each}}\n");
    b.run(&b.steps("- parse: { format: csv }\n- render: { template: d.txt.hbs }"), "p.csv", b"sku\nA\nB\n");
    assert_eq!(b.read("out"), "\u{feff}AB\n");
}

#[test]
fn line_endings_of_template_text_are_chosen_not_inherited() {
    let b = Bench::new();
    b.file("h.txt.hbs", "HEAD\r\n").file("r.txt.hbs", "{{record.sku}}\n");
    let base = "- parse: { format: csv, delimiter: ';' }\n- render: { header: h.txt.hbs, row: r.txt.hbs";
    b.run(&b.steps(&format!("{base} }}")), "p.csv", b"sku\nA\nB\n");
    assert_eq!(b.read("out"), "HEAD\nA\nB\n");
    b.run(&b.steps(&format!("{base}, line_ending: crlf }}")), "p.csv", b"sku\nA\nB\n");
    assert_eq!(b.read("out"), "HEAD\r\nA\r\nB\r\n");
    // Values keep their own line breaks.
    b.run(&b.steps(&format!("{base}, line_ending: crlf }}")), "p.csv", b"sku\n\"x\ny\"\n");
    assert_eq!(b.read("out"), "HEAD\r\nx\ny\r\n");
}

#[test]
fn rendered_records_after_a_map_script_and_json_input() {
    let b = Bench::new();
    b.file("split.rhai", "fn map(r) { if r.n == 0 { return (); } [#{ v: r.n }, #{ v: r.n * 10 }] }")
        .file("r.txt.hbs", "{{row}}:{{record.v}}\n")
        .file("f.txt.hbs", "{{count}}/{{sums.v}}\n");
    let steps =
        b.steps("- parse: { format: jsonl }\n- map: { script: split.rhai }\n- render: { row: r.txt.hbs, footer: f.txt.hbs, sums: [v] }");
    let p = b.run(&steps, "a.jsonl", b"{\"n\": 1}\n{\"n\": 0}\n{\"n\": 2}\n");
    assert_eq!(p.counts, RecordCounts { read: 3, valid: 2, rejected: 0, skipped: 1, written: 4 });
    assert_eq!(b.read("out"), "1:1\n2:10\n3:2\n4:20\n4/33\n");
}

/// A template failing on one of the records a script split a row into says which (before:
/// the row alone, for a summed field or a missing one alike).
#[test]
fn a_failure_on_one_of_the_records_a_script_returned_names_which() {
    let b = Bench::new();
    b.file("split.rhai", "fn map(r) { [#{ v: 1 }, #{ v: r.v }, #{ v: 3, w: r.w }] }")
        .file("r.txt.hbs", "{{record.v}}{{#if record.w}}{{record.w.x}}{{/if}}\n")
        .file("f.txt.hbs", "{{sums.v}}\n");
    let steps = b
        .try_steps(
            "- parse: { format: jsonl }\n- map: { script: split.rhai }\n- render: { row: r.txt.hbs, footer: f.txt.hbs, sums: [v] }",
            OnInvalid::Skip,
        )
        .unwrap();
    let p = b.run(&steps, "a.jsonl", b"{\"v\": 2, \"w\": null}\n{\"v\": \"zwei\", \"w\": null}\n{\"v\": 2, \"w\": {\"y\": 1}}\n");
    assert_eq!(p.counts, RecordCounts { read: 3, valid: 1, rejected: 2, skipped: 0, written: 3 });
    let rejects = b.read("rejects");
    let lines: Vec<&str> = rejects.lines().collect();
    assert_eq!(lines.len(), 2, "{rejects}");
    assert!(lines[0].contains(r#"v: \"zwei\" is not a number (a field in `sums`) (record 2 of the 3 the script returned)"#), "{rejects}");
    assert!(lines[1].contains("`record.w.x` is missing") && lines[1].contains("(record 3 of the 3 the script returned)"), "{rejects}");
}

#[test]
fn streaming_holds_one_record_at_a_time() {
    // 200k records through a small row template; the real memory bound is measured on the
    // binary for the other steps (tests/it/content_sftp.rs); this one checks it works at size.
    let b = Bench::new();
    b.file("r.txt.hbs", "{{lpad record.id 7 fill=\"0\"}}{{pad record.name 8}}\n").file("f.txt.hbs", "{{count}} {{sums.id}}\n");
    let mut body = String::from("id,name\n");
    for i in 1..=200_000u32 {
        body.push_str(&format!("{i},n{i}\n"));
    }
    let steps = b.steps("- parse: { format: csv }\n- render: { row: r.txt.hbs, footer: f.txt.hbs, sums: [id] }");
    let p = b.run(&steps, "big.csv", body.as_bytes());
    assert_eq!((p.counts.written, p.quarantine), (200_000, None));
    let out = b.read("out");
    assert_eq!(out.len(), 200_000 * 16 + "200000 20000100000\n".len());
    assert!(out.starts_with("0000001n1      \n") && out.ends_with("0200000n200000 \n200000 20000100000\n"));
}

/// A helper that does not exist, one given too few arguments or a partial would refuse
/// every record at run time: refused when the flow is loaded, with the line.
#[test]
fn unknown_helpers_missing_arguments_and_partials_are_refused_at_load() {
    let b = Bench::new();
    b.file(
        "row.txt.hbs",
        "{{pad record.id 4}}{{count}}{{#each record.items}}{{upper this}}{{/each}}\n{{frobnicate record.sku}}\n{{#if record.x}}{{lpad (upper record.id) }}{{/if}}\n{{> footer}}\n",
    );
    let got = b.problems("- parse: { format: csv }\n- render: { row: row.txt.hbs }");
    assert_eq!(
        got,
        [
            "/steps/1/render/row: row.txt.hbs line 2, col 1: there is no helper `frobnicate` (see docs/templates.md for the helpers there are)",
            "/steps/1/render/row: row.txt.hbs line 3, col 17: `lpad` needs 2 argument(s), given 1",
            "/steps/1/render/row: row.txt.hbs line 4, col 1: partials (`{{> name}}`) are not available: put the text in the template itself",
        ],
        "{got:#?}"
    );
}

/// A setting written as a literal that the helper refuses whatever the value — Java's
/// `yyyyMMdd` as a date format, decimals as text, a fill of two characters — failed every
/// record at run time (every file quarantined): refused when the flow is loaded, with the
/// line. Settings read from the data, and good literals, are left to the run.
#[test]
fn literal_settings_a_helper_refuses_whatever_the_value_are_refused_at_load() {
    let b = Bench::new();
    b.file(
        "row.txt.hbs",
        "{{date record.d \"dd.MM.yyyy\"}}\n{{#if record.x}}{{lpad (number record.p decimals=\"two\") 9 fill=\"00\"}}{{/if}}\n{{now \"%Q\"}}{{csv record.n delimiter=\";\"}}{{pad record.n record.width}}{{number record.p 2 decimal=\",\"}}{{date record.d}}\n",
    );
    let got = b.problems("- parse: { format: csv }\n- render: { row: row.txt.hbs }");
    let tail = " (whatever the value: it would fail each time it is rendered)";
    assert_eq!(
        got,
        [
            format!(
                "/steps/1/render/row: row.txt.hbs line 1, col 1: `date`: `dd.MM.yyyy`: `yyyy` is not a date token here, and would be written as it is: the year is `YYYY` (tokens `YYYY` `YY` `MM` `DD` `HH` `mm` `ss`, or a strftime format with `%`){tail}"
            ),
            format!("/steps/1/render/row: row.txt.hbs line 2, col 17: `lpad`: fill must be one character, not \"00\"{tail}"),
            format!(
                "/steps/1/render/row: row.txt.hbs line 2, col 17: `number`: decimals must be a whole number from 0 to 65536, not \"two\"{tail}"
            ),
            format!("/steps/1/render/row: row.txt.hbs line 3, col 1: `now`: `%Q` is not a valid date format{tail}"),
        ],
        "{got:#?}"
    );
}

/// An empty row template (a file saved empty) delivered every file as an empty file, its
/// source then deleted or moved as delivered.
#[test]
fn a_template_that_writes_nothing_is_refused_at_load() {
    let b = Bench::new();
    b.file("empty.txt.hbs", "").file("blank.txt.hbs", "\n  {{!-- nothing yet --}}\n").file("count.txt.hbs", "{{count}} records\n");
    assert_eq!(
        b.problems("- parse: { format: csv }\n- render: { row: empty.txt.hbs }"),
        ["/steps/1/render/row: empty.txt.hbs is empty: every file would be delivered empty, without any of its records"]
    );
    assert_eq!(
        b.problems("- parse: { format: csv }\n- render: { header: blank.txt.hbs, row: empty.txt.hbs }"),
        [
            "/steps/1/render/row: empty.txt.hbs is empty (and so are the header and footer): every file would be delivered empty, without any of its records"
        ]
    );
    assert_eq!(
        b.problems("- parse: { format: csv }\n- render: { template: blank.txt.hbs }"),
        [
            "/steps/1/render/template: blank.txt.hbs is empty: every file would be delivered as an empty document, without any of its records"
        ]
    );
    // A blank row under a footer that writes a count is a summary file.
    let steps = b.steps("- parse: { format: csv }\n- render: { row: empty.txt.hbs, footer: count.txt.hbs }");
    assert_eq!(b.run(&steps, "a.csv", b"id\n1\n2\n").quarantine, None);
    assert_eq!(b.read("out"), "2 records\n");
}

/// A template reading a name its context does not have (`{{sku}}` in a row template, for
/// `{{record.sku}}`; a record's field at the top of a whole-document template) is refused when
/// the flow is loaded. Before, it was loaded, every record of every file failed to render, and
/// each file was quarantined with a report asking the partner to correct it.
#[test]
fn a_template_reading_a_name_its_context_does_not_have_is_refused() {
    let b = Bench::new();
    b.file("row.txt.hbs", "{{record.sku}};{{sku}}\n{{#if note}}{{note}}{{/if}}{{default price \"-\"}}{{pad file.name 3}}{{row}}\n");
    b.file("head.txt.hbs", "{{file.name}} {{count}}{{title}}\n").file("foot.txt.hbs", "{{count}} {{sums.a}} {{total}}\n");
    b.file("doc.txt.hbs", "{{count}}{{#each records}}{{sku}}{{/each}}{{record.sku}}{{#with file}}{{name}}{{/with}}\n");
    let has = |what: &str, has: &str| format!("is not a name {what} template is given (it has {has}");
    let got = b.problems("- parse: { format: csv }\n- render: { header: head.txt.hbs, row: row.txt.hbs, footer: foot.txt.hbs }");
    assert_eq!(
        got,
        [
            format!(
                "/steps/1/render/header: head.txt.hbs line 1, col 24: `title` {}): every file would fail to render",
                has("a header", "`file`")
            ),
            format!(
                "/steps/1/render/row: row.txt.hbs line 1, col 16: `sku` {}; a field of the record is `record.sku`): every record would fail to render",
                has("a row", "`record`, `row`, `file`")
            ),
            format!(
                "/steps/1/render/row: row.txt.hbs line 2, col 13: `note` {}; a field of the record is `record.note`): every record would fail to render",
                has("a row", "`record`, `row`, `file`")
            ),
            format!(
                "/steps/1/render/footer: foot.txt.hbs line 1, col 22: `total` {}): every file would fail to render",
                has("a footer", "`count`, `sums`, `file`")
            ),
        ],
        "a tested read (`#if note`, `default price`) fails nothing; the body's `{{{{note}}}}` does"
    );
    // Tests of such names are always false: warned of.
    b.file("tests.txt.hbs", "{{record.sku}}{{#if note}}!{{/if}}{{default price \"-\"}}\n");
    let warned = b.steps("- parse: { format: csv }\n- render: { row: tests.txt.hbs }").warnings();
    let test = |col: usize, name: &str| {
        (
            "/steps/1/render/row".to_string(),
            format!(
                "tests.txt.hbs line 1, col {col}: `{name}` {}; a field of the record is `record.{name}`): it is never there (a test of it is always false, `default` gives its default)",
                has("a row", "`record`, `row`, `file`")
            ),
        )
    };
    assert_eq!(warned, [test(15, "note"), test(35, "price")]);
    let got = b.problems("- parse: { format: csv }\n- render: { template: doc.txt.hbs }");
    assert_eq!(
        got,
        [format!(
            "/steps/1/render/template: doc.txt.hbs line 1, col 43: `record.sku` {}; a record's fields are read inside `{{{{#each records}}}}`): every file would fail to render",
            has("a whole-document", "`records`, `count`, `sums`, `file`")
        )]
    );
}

#[test]
fn build_reports_template_and_order_problems_with_paths() {
    let b = Bench::new();
    b.file("ok.txt.hbs", "{{record.a}}\n").file("bad.txt.hbs", "line one\n{{#each records}}\n{{/if}}\n").file("plain.hbs", "x\n");
    b.file("name.txt.hbs", "{{file.name}}\n");
    let got = b.problems("- parse: { format: csv }\n- render: { row: bad.txt.hbs, footer: missing.hbs }");
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(got[0].starts_with("/steps/1/render/row: bad.txt.hbs line 3, col 1: "), "{got:#?}");
    assert!(got[1].starts_with("/steps/1/render/footer: cannot read template "), "{got:#?}");
    assert_eq!(
        b.problems("- parse: { format: csv }\n- render: { template: name.txt.hbs, row: ok.txt.hbs }"),
        [
            "/steps/1/render/template: use either `template` (one document from all records) or `header`/`row`/`footer` (one record at a time), not both"
        ]
    );
    assert_eq!(
        b.problems("- parse: { format: csv }\n- render: { header: name.txt.hbs }"),
        ["/steps/1/render/row: `header` and `footer` go with a `row` template (rendered for every record)"]
    );
    assert_eq!(
        b.problems("- parse: { format: csv }\n- render: { row: ok.txt.hbs, max_records: 5, sums: [a, a.b] }"),
        [
            "/steps/1/render/max_records: applies to a whole-document `template`; a `row` template holds one record at a time",
            "/steps/1/render/sums: `a` and `a.b` cannot both be summed: `sums.a` would be a number and a group"
        ]
    );
    assert_eq!(
        b.problems("- parse: { format: csv }\n- render: { row: plain.hbs }"),
        [
            "/steps/1/render/extension: cannot tell the output's extension from `plain.hbs`: name the template like `row.txt.hbs`, or set `extension`"
        ]
    );
    assert!(b.try_steps("- parse: { format: csv }\n- render: { row: plain.hbs, extension: dat }", OnInvalid::Quarantine).is_ok());
    assert_eq!(
        b.problems("- render: { row: ok.txt.hbs }\n- parse: { format: csv }"),
        ["/steps/0/render: `render` works on records: put a `parse` step before it", "/steps/1/parse: `render` must be the last step"]
    );
    assert_eq!(
        b.problems("- parse: { format: csv }\n- write: { format: csv }\n- render: { row: ok.txt.hbs }"),
        ["/steps/2/render: the output is written once: use either `write` or `render`, not both"]
    );
    assert_eq!(
        b.problems("- parse: { format: csv }\n- render: { row: ok.txt.hbs }\n- write: { format: csv }"),
        ["/steps/2/write: the output is written once: use either `write` or `render`, not both"]
    );
    assert_eq!(
        b.problems("- parse: { format: csv }\n- render: { row: ok.txt.hbs }\n- validate: {}"),
        ["/steps/2/validate: `render` must be the last step"]
    );
}

#[test]
fn the_file_context_describes_the_source_and_the_run() {
    let b = Bench::new();
    b.file(
        "h.txt.hbs",
        "{{file.name}}|{{file.stem}}|{{file.ext}}|{{file.size}}|{{file.run}}|{{file.date}}|{{now \"YYYY-MM-DDTHH:mm:ss\"}}\n",
    )
    .file("r.txt.hbs", "{{row}}\n");
    let steps = b.steps("- parse: { format: json }\n- render: { header: h.txt.hbs, row: r.txt.hbs }");
    let body = json!([{"a": 1}]).to_string();
    b.run(&steps, "x.y.json", body.as_bytes());
    assert_eq!(b.read("out"), format!("x.y.json|x.y|json|{}|42|2026-01-05|2026-01-05T10:00:00\n1\n", body.len()));
}

#[test]
fn handlebars_block_helpers_and_root_work_in_strict_mode() {
    let b = Bench::new();
    b.file(
        "d.txt.hbs",
        "{{#each records}}{{#if (eq currency \"EUR\")}}€{{else}}{{currency}}{{/if}}{{#unless @last}},{{/unless}}{{/each}} \
         {{#each records}}{{#if @first}}{{@root.file.stem}}:{{@index}}{{/if}}{{/each}}\n",
    );
    let steps = b.steps("- parse: { format: csv }\n- render: { template: d.txt.hbs }");
    b.run(&steps, "x.csv", b"currency\nEUR\nCHF\nEUR\n");
    assert_eq!(b.read("out"), "€,CHF,€ x:0\n");
    // A field named like a helper, read with `this.` (docs/templates.md).
    b.file("c.txt.hbs", "{{#each records}}{{this.count}}/{{count @root.records}} {{/each}}{{count}}\n");
    let steps = b.steps("- parse: { format: csv }\n- render: { template: c.txt.hbs }");
    b.run(&steps, "x.csv", b"count\n7\n8\n");
    assert_eq!(b.read("out"), "7/2 8/2 2\n");
}

/// A schema allowing no other properties than sku, currency and price (with `open`: any).
fn orders_schema(b: &Bench, open: bool) {
    let extra = if open { "" } else { r#", "additionalProperties": false"# };
    b.file(
        "orders.schema.json",
        &format!(r#"{{"type": "object", "properties": {{"sku": {{}}, "currency": {{}}, "price": {{"type": "number"}}}}{extra}}}"#),
    );
}

const ORDERS: &[u8] = b"sku,currency,price\nA-1,EUR,12.10\nB-2,CHF,3\n";

/// A typo in the template is the flow's mistake: the partner is not told to correct a correct file.
#[test]
fn a_template_reading_a_field_the_schema_does_not_have_is_the_flows_own_error() {
    let b = Bench::new();
    orders_schema(&b, false);
    b.file("row.txt.hbs", "{{record.sku}};{{#if record.note}}!{{/if}}\n{{record.price}} {{record.curency}}\n");
    let yaml = "- parse: { format: csv }\n- validate: { schema: orders.schema.json }\n- render: { row: row.txt.hbs }";
    let steps = b.steps(yaml);
    let why = "is not a property of the schema orders.schema.json (declared: currency, price, sku)";
    assert_eq!(
        steps.warnings(),
        [
            (
                "/steps/2/render/row".to_string(),
                format!("template row.txt.hbs line 1, col 16: `record.note` {why}; no valid record has it")
            ),
            (
                "/steps/2/render/row".to_string(),
                format!("template row.txt.hbs line 2, col 18: `record.curency` {why}; every record will fail to render")
            ),
        ]
    );
    let v = b.run(&steps, "o.csv", ORDERS).quarantine.expect("every record fails");
    assert_eq!(v.reason, "the flow's template row.txt.hbs failed on 2 of 2 records (on_invalid: quarantine)");
    assert_eq!((v.cause, v.errors[0].cause, v.errors[0].source), (Causes::Template, Cause::Template, Some(Source::Render)));
    assert_eq!(
        v.errors[0].to_string(),
        format!(
            "row 1 (line 2): row.txt.hbs line 2, col 18: `record.curency` {why}, so no valid record has it: the template is to be \
             corrected, not the file"
        )
    );
    let report = quarantine::Report {
        flow: "f",
        run: 1,
        file: "o.csv",
        size: 1,
        sha256: "ab",
        quarantined_at: "2026-01-05T10:00:00Z".into(),
        reason: &v.reason,
        counts: Some(RecordCounts::default()),
        errors: &v.errors,
        errors_total: v.errors_total,
        cause: v.cause,
    };
    let text = quarantine::text(&report);
    assert!(text.contains("  [template] row 2 (line 3): row.txt.hbs line 2, col 18: `record.curency`"), "{text}");
    assert!(text.contains("These errors come from the flow's templates, not from a check of the file's content"), "{text}");
    assert!(!text.contains("Please correct"), "{text}");
    // A declared field a record lacks is still the record's problem (JSON has no columns).
    b.file("row.txt.hbs", "{{record.sku}} {{record.currency}}\n");
    let steps = b.steps(&yaml.replace("csv", "jsonl"));
    assert!(steps.warnings().is_empty());
    let v = b.run(&steps, "o.jsonl", b"{\"sku\": \"A\"}\n").quarantine.unwrap();
    assert_eq!((v.cause, v.errors[0].cause), (Causes::Data, Cause::Data));
    assert!(v.errors[0].message.contains("`record.currency` is missing (templates are strict"), "{v:?}");
}

/// Where a record may hold fields the schema does not list, the template is not second-guessed.
#[test]
fn an_open_schema_or_a_script_after_it_leaves_template_fields_to_the_records() {
    let b = Bench::new();
    b.file("row.txt.hbs", "{{record.sku}} {{record.curency}}\n").file("m.rhai", "fn map(r) { r }");
    for (open, yaml) in [
        (true, "- parse: { format: csv }\n- validate: { schema: orders.schema.json }\n- render: { row: row.txt.hbs }"),
        (
            false,
            "- parse: { format: csv }\n- validate: { schema: orders.schema.json }\n- map: { script: m.rhai }\n- render: { row: row.txt.hbs }",
        ),
    ] {
        orders_schema(&b, open);
        let steps = b.steps(yaml);
        assert_eq!(steps.warnings(), [], "{yaml}");
        let v = b.run(&steps, "o.csv", ORDERS).quarantine.unwrap();
        assert_eq!((v.cause, v.reason.as_str()), (Causes::Data, "2 of 2 records are invalid (on_invalid: quarantine)"), "{yaml}");
    }
    // A script before the schema: the schema checks what is rendered.
    orders_schema(&b, false);
    let yaml =
        "- parse: { format: csv }\n- map: { script: m.rhai }\n- validate: { schema: orders.schema.json }\n- render: { row: row.txt.hbs }";
    assert_eq!(b.steps(yaml).warnings().len(), 1);
}

#[test]
fn a_document_template_reading_a_field_no_record_has_is_the_flows_own_error() {
    let b = Bench::new();
    orders_schema(&b, false);
    b.file("d.txt.hbs", "{{count}}\n{{#each records}}{{sku}} {{this.curency}}\n{{/each}}");
    let steps = b.steps("- parse: { format: csv }\n- validate: { schema: orders.schema.json }\n- render: { template: d.txt.hbs }");
    let w = steps.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].0, "/steps/2/render/template");
    assert!(w[0].1.starts_with("template d.txt.hbs line 2, col 26: `this.curency` is not a property"), "{w:?}");
    let v = b.run(&steps, "o.csv", ORDERS).quarantine.unwrap();
    assert_eq!((v.cause, v.errors[0].cause, v.errors[0].row), (Causes::Template, Cause::Template, None));
    assert!(v.reason.starts_with("the flow's template failed: d.txt.hbs line 2, col 26: `this.curency` is not a property"), "{}", v.reason);
}

/// Handlebars' comparisons refuse a missing argument with an error of their own (naming the
/// helper, not the field): a typo there is the flow's mistake too, and said to fail every record.
#[test]
fn a_comparison_of_a_field_the_schema_does_not_have_is_the_flows_own_error() {
    let b = Bench::new();
    orders_schema(&b, false);
    let yaml = "- parse: { format: csv }\n- validate: { schema: orders.schema.json }\n- render: { row: row.txt.hbs }";
    let why = "is not a property of the schema orders.schema.json (declared: currency, price, sku)";
    for (text, path, col) in [
        ("{{record.sku}}\n{{#if (eq record.curency \"EUR\")}}€{{/if}}\n", "record.curency", 1),
        ("{{record.sku}}\n{{#unless (gt 10 record.prise)}}cheap{{/unless}}\n", "record.prise", 1),
        ("{{record.sku}}\n{{pad record.sku 3}}{{len record.skus}}\n", "record.skus", 21),
        // `#each` without `{{else}}` fails on a missing value too (with one, it renders that).
        ("{{record.sku}}\n{{#each record.itemz}}-{{/each}}\n", "record.itemz", 1),
    ] {
        b.file("row.txt.hbs", text);
        let steps = b.steps(yaml);
        assert_eq!(
            steps.warnings(),
            [(
                "/steps/2/render/row".to_string(),
                format!("template row.txt.hbs line 2, col {col}: `{path}` {why}; every record will fail to render")
            )],
            "{text}"
        );
        let v = b.run(&steps, "o.csv", ORDERS).quarantine.expect("every record fails");
        assert_eq!((v.cause, v.errors[0].cause), (Causes::Template, Cause::Template), "{text}: {v:?}");
        assert_eq!(
            v.errors[0].to_string(),
            format!(
                "row 1 (line 2): row.txt.hbs line 2, col {col}: `{path}` {why}, so no valid record has it: the template is to be corrected, not the file"
            )
        );
    }
    // `and` / `or` take a missing value for false: nothing fails.
    b.file("row.txt.hbs", "{{#if (or record.curency record.sku)}}{{record.sku}}{{/if}}\n");
    let steps = b.steps(yaml);
    assert_eq!(
        steps.warnings(),
        [(
            "/steps/2/render/row".to_string(),
            format!("template row.txt.hbs line 1, col 1: `record.curency` {why}; no valid record has it")
        )]
    );
    assert_eq!(b.run(&steps, "o.csv", ORDERS).quarantine, None);
    assert_eq!(b.read("out"), "A-1\nB-2\n");
    // A declared field a record lacks, compared, is still the record's problem; named (before:
    // "`eq` needs an argument (none was given)").
    b.file("row.txt.hbs", "{{#if (eq record.currency \"EUR\")}}€{{/if}}\n");
    let steps = b.steps(&yaml.replace("csv", "jsonl"));
    let v = b.run(&steps, "o.jsonl", b"{\"sku\": \"A\"}\n").quarantine.unwrap();
    assert_eq!((v.cause, v.errors[0].cause), (Causes::Data, Cause::Data));
    assert!(v.errors[0].message.starts_with("row.txt.hbs line 1, col 1: `record.currency` is missing (templates are strict"), "{v:?}");
    // Unless two reads could be it.
    b.file("row.txt.hbs", "{{#if (or (eq record.currency \"EUR\") (eq record.price 1))}}€{{/if}}\n");
    let steps = b.steps(&yaml.replace("csv", "jsonl"));
    let v = b.run(&steps, "o.jsonl", b"{\"sku\": \"A\"}\n").quarantine.unwrap();
    assert_eq!(
        v.errors[0].message,
        "row.txt.hbs line 1, col 1: `eq` needs an argument (none was given, or it reads a value that is not there)"
    );
}
