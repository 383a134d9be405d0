//! The `render` step end to end through the `wharf` binary, local folder to local folder: a
//! fixed-width file with a header and a trailer carrying the count and an exact sum; a template
//! naming a field the records lack (the file quarantined, the report naming the template line);
//! and the repository's example templates (`templates/`) on the sample price list.

use crate::support;
use support::text;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{TempDir, tempdir};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A local → local flow in a temp folder: `inbox/` (the source; `rejected/` quarantine inside
/// it), `out/` (the sink), the flow file and its templates beside them.
struct Bench {
    dir: TempDir,
}

impl Bench {
    fn new(steps: &str) -> Bench {
        let b = Bench { dir: tempdir() };
        for d in ["inbox", "out"] {
            fs::create_dir_all(b.path(d)).unwrap();
        }
        let flow = format!(
            "name: render-test\n\
             endpoints:\n  inbox: {{ type: local, root: inbox }}\n  out: {{ type: local, root: out }}\n\
             source: {{ endpoint: inbox, path: /, include: ['*.csv'] }}\n\
             steps:\n{steps}\n\
             quarantine: {{ endpoint: inbox, path: /rejected }}\n\
             sinks: [ {{ endpoint: out, path: / }} ]\n\
             after: {{ success: delete, failure: keep }}\n"
        );
        b.file("flow.yaml", &flow);
        b
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn file(&self, rel: &str, text: &str) -> &Self {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
        self
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    fn wharf(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_wharf"))
            .arg("--state-dir")
            .arg(self.path("state"))
            .args(args)
            .env("RUST_LOG", "wharf=warn")
            .output()
            .unwrap()
    }

    fn run(&self) -> serde_json::Value {
        let flow = self.path("flow.yaml");
        let out = self.wharf(&["run", "--json", flow.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
    }
}

const ORDERS: &str = "id;customer;amount\n1;Müller GmbH;12.10\n2;Acme & Co;0.2\n3;Zeta Handelsgesellschaft;1000\n";

#[test]
fn header_rows_and_a_trailer_with_count_and_sum_make_a_fixed_width_file() {
    let b = Bench::new(
        "  - parse: { format: csv, delimiter: ';' }\n  - render: { header: t/header.dat.hbs, row: t/row.dat.hbs, footer: t/footer.dat.hbs, sums: [amount], line_ending: crlf }",
    );
    b.file("t/header.dat.hbs", "HDR{{pad file.stem 10}}{{lpad file.run 4 fill=\"0\"}}\n")
        .file("t/row.dat.hbs", "{{lpad record.id 5 fill=\"0\"}}{{pad record.customer 12}}{{lpad (number record.amount decimals=2) 10}}\n")
        .file("t/footer.dat.hbs", "TRL{{lpad count 6 fill=\"0\"}}{{lpad (number sums.amount) 12 fill=\"0\"}}\n")
        .file("inbox/orders.csv", ORDERS);
    let r = b.run();
    assert_eq!((r["counts"]["delivered"].as_u64(), r["quarantined"].as_u64()), (Some(1), Some(0)), "{r:#}");
    assert_eq!(r["records"]["written"], 3, "{r:#}");
    // The extension comes from the template name: orders.csv is delivered as orders.dat.
    assert_eq!(
        b.read("out/orders.dat"),
        "HDRorders    0001\r\n\
         00001Müller GmbH      12.10\r\n\
         00002Acme & Co         0.20\r\n\
         00003Zeta Handels   1000.00\r\n\
         TRL000003000001012.30\r\n"
    );
    assert!(!b.path("inbox/orders.csv").exists(), "after.success: delete");
}

#[test]
fn a_template_naming_a_missing_field_quarantines_the_file_and_the_report_names_the_line() {
    let b = Bench::new("  - parse: { format: csv, delimiter: ';' }\n  - render: { row: row.txt.hbs }");
    b.file("row.txt.hbs", "{{record.id}};\n{{record.customer}};{{record.country}}\n").file("inbox/orders.csv", ORDERS);
    let r = b.run();
    assert_eq!((r["counts"]["delivered"].as_u64(), r["quarantined"].as_u64()), (Some(0), Some(1)), "{r:#}");
    assert!(b.path("inbox/rejected/orders.csv").exists(), "the original is copied to quarantine");
    assert_eq!(fs::read_dir(b.path("out")).unwrap().count(), 0, "nothing is delivered");
    let report = b.read("inbox/rejected/orders.csv.report.txt");
    assert!(report.contains("row.txt.hbs line 2, col 21: `record.country` is missing"), "{report}");
    let json: serde_json::Value = serde_json::from_str(&b.read("inbox/rejected/orders.csv.report.json")).unwrap();
    assert_eq!(json["errors"][0]["row"], 1, "{json:#}");
    // `wharf validate` reports a template that does not compile, with its line (an unclosed
    // block: where the file ends).
    b.file("row.txt.hbs", "{{record.id}}\n{{#if record.customer}}\n");
    let out = b.wharf(&["validate", b.path("flow.yaml").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("row.txt.hbs line 3, col 1: ") && text(&out).contains("(at /steps/1/render/row)"), "{}", text(&out));
}

#[test]
fn the_example_templates_render_the_sample_price_list() {
    let sample = fs::read_to_string(repo("flows/demo-data/prices/PRICES_20260105.csv")).unwrap();
    let templates = repo("templates").display().to_string();
    let b = Bench::new(&format!(
        "  - parse: {{ format: csv, delimiter: ';' }}\n  - render: {{ template: '{templates}/pricelist.xml.hbs', escape: xml, sums: [price] }}"
    ));
    b.file("inbox/PRICES_20260105.csv", &sample);
    b.run();
    let xml = b.read("out/PRICES_20260105.xml");
    let (head, rest) = xml.split_once(" created=\"").unwrap();
    assert_eq!(head, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<pricelist source=\"PRICES_20260105.csv\"");
    assert_eq!(rest.split_once('"').unwrap().0.len(), "2026-01-05T10:00:00Z".len());
    assert!(
        rest.ends_with(
            "\" items=\"5\">\n\
             \x20 <item sku=\"A-100\" currency=\"EUR\" valid-from=\"2026-01-05\">\n    <name>Schraube M6 x 20</name>\n    <price>0.12</price>\n  </item>\n\
             \x20 <item sku=\"A-101\" currency=\"EUR\" valid-from=\"2026-01-05\">\n    <name>Schraube M8 x 30</name>\n    <price>0.19</price>\n  </item>\n\
             \x20 <item sku=\"B-200\" currency=\"EUR\" valid-from=\"2026-01-05\">\n    <name>Mutter M6; verzinkt</name>\n    <price>0.05</price>\n  </item>\n\
             \x20 <item sku=\"C-310\" currency=\"EUR\" valid-from=\"2026-02-01\">\n    <name>Winkel 90°, 40 mm</name>\n    <price>2.50</price>\n  </item>\n\
             \x20 <item sku=\"D-400\" currency=\"EUR\" valid-from=\"2026-02-01\">\n    <name>Werkzeugkoffer &quot;Profi&quot;</name>\n    <price>149.90</price>\n  </item>\n\
             \x20 <total>152.755</total>\n</pricelist>\n"
        ),
        "{xml}"
    );

    // The header/row/footer set, as flows/price-list-ftp.yaml uses it (that flow's own test
    // runs it against vsftpd in tests/it/examples.rs).
    let b = Bench::new(&format!(
        "  - parse: {{ format: csv, delimiter: ';' }}\n  - render: {{ header: '{templates}/pricelist/header.csv.hbs', row: '{templates}/pricelist/row.csv.hbs', footer: '{templates}/pricelist/footer.csv.hbs', sums: [price], line_ending: crlf }}"
    ));
    b.file("inbox/PRICES_20260105.csv", &sample);
    b.run();
    let csv = b.read("out/PRICES_20260105.csv");
    assert!(csv.starts_with("H;PRICELIST;WHARF-DEMO;PRICES_20260105;"), "{csv}");
    assert!(
        csv.ends_with(
            "\r\nREC;SKU;NAME;PRICE;CURRENCY;VALID_FROM\r\n\
             D;A-100;Schraube M6 x 20;0,12;EUR;20260105\r\n\
             D;A-101;Schraube M8 x 30;0,19;EUR;20260105\r\n\
             D;B-200;\"Mutter M6; verzinkt\";0,05;EUR;20260105\r\n\
             D;C-310;Winkel 90°, 40 mm;2,50;EUR;20260201\r\n\
             D;D-400;\"Werkzeugkoffer \"\"Profi\"\"\";149,90;EUR;20260201\r\n\
             T;5;152,76\r\n"
        ),
        "{csv}"
    );
}
