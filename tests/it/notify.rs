//! Notifications delivered for real: webhooks to an HTTP receiver on 127.0.0.1 (JSON, Slack
//! and Teams bodies, a custom template, secret headers, retry on 500, no retry on 4xx), email
//! to an SMTP receiver (STARTTLS with a test CA, AUTH PLAIN and LOGIN, wrong password), a
//! command reading the notice on stdin, and the dispatcher's throttling — all configured
//! through the same validation as a flow file's `notify:` section.

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use support::http_receiver::HttpReceiver;
use support::smtp_receiver::{SmtpOptions, SmtpReceiver};
use support::tempdir;
use wharf::config::interpolate::Lookup;
use wharf::config::raw_notify::RawNotifyRule;
use wharf::config::validate::validate_notify;
use wharf::notify::{Dispatcher, ErrorKind, Notice, Outcome, RetryPolicy, Rule};

fn env(name: &str) -> Result<String, std::env::VarError> {
    match name {
        "SMTP_PASS" => Ok("pw".into()),
        "WRONG_PASS" => Ok("wrong-s3cret".into()),
        "TOKEN" => Ok("Bearer t0ken".into()),
        _ => Err(std::env::VarError::NotPresent),
    }
}

/// Rules from YAML, validated as in the flow file `flows/orders.yaml` in `dir` (each channel
/// is named `flows/orders.yaml notify[N] (…)`).
fn rules(dir: &Path, yaml: &str) -> Vec<Rule> {
    let raw: Vec<RawNotifyRule> = serde_json::from_value(serde_yaml::from_str(yaml).unwrap()).unwrap();
    validate_notify(raw, Path::new("flows/orders.yaml"), "/notify", &Lookup { base_dir: dir, env: &env })
        .unwrap_or_else(|p| panic!("{p:#?}"))
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
}

fn quarantined() -> Notice {
    let mut n = Notice::new("quarantined", "roster-import", at(0), "in/a.csv", "row 3: column `email` is empty");
    n.seq = Some(7);
    n.run = Some(12);
    n.facts = json!({ "invalid": 1, "report": "quarantine/a.csv.report.json" });
    n
}

fn quick() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        backoff: Duration::from_millis(1),
        attempt_timeout: Duration::from_secs(20),
        deferral: Duration::from_millis(1),
        deferrals: 2,
        rate_limit: Duration::from_millis(1),
        rate_limits: 2,
    }
}

#[tokio::test]
async fn webhook_json_body_with_secret_headers() {
    let hook = HttpReceiver::start(&[]).await;
    let dir = tempdir();
    let rule = &rules(
        dir.path(),
        &format!(
            "- on: [all]\n  webhook: {{ url: \"{}\", headers: {{ Authorization: \"${{env:TOKEN}}\" }} }}\n",
            hook.url("/hooks/s3cret")
        ),
    )[0];
    let notifier = rule.notifier().unwrap();
    assert_eq!(notifier.describe(), "flows/orders.yaml notify[0] (webhook to 127.0.0.1)", "the URL path is a secret");
    notifier.send(&quarantined(), 0).await.unwrap();

    let req = &hook.requests()[0];
    assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", "/hooks/s3cret"));
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("authorization"), Some("Bearer t0ken"));
    let body = req.json();
    assert_eq!(body["kind"], "quarantined");
    assert_eq!((body["flow"].as_str(), body["subject"].as_str()), (Some("roster-import"), Some("in/a.csv")));
    assert_eq!((body["seq"].as_u64(), body["run"].as_u64(), body["held_back"].as_u64()), (Some(7), Some(12), Some(0)));
    assert_eq!(body["at"], "2023-11-14T22:13:20.000Z");
    assert_eq!(body["facts"]["invalid"], 1);
    assert_eq!(
        body["text"],
        "wharf: flow roster-import: file in/a.csv quarantined: row 3: column `email` is empty (all of it and what next: `wharf quarantine show roster-import in/a.csv`)"
    );
}

/// Three hooks on one host (two Slack hooks look alike): each is named by its rule's file and
/// position, so the log says which one failed — and never by its path or query (the token).
#[tokio::test]
async fn hooks_to_one_host_are_told_apart_by_their_rule_never_by_their_url() {
    let hook = HttpReceiver::start(&[200, 404]).await;
    let dir = tempdir();
    let yaml = format!(
        "- on: [all]\n  webhook: {{ url: \"{}\", format: slack }}\n- on: [all]\n  webhook: {{ url: \"{}\", format: slack }}\n",
        hook.url("/services/T0/B1/s3cret"),
        hook.url("/services/T0/B2/other?token=s3cret")
    );
    let names: Vec<String> = rules(dir.path(), &yaml).iter().map(|r| r.notifier().unwrap().describe()).collect();
    assert_eq!(names, ["flows/orders.yaml notify[0] (webhook to 127.0.0.1)", "flows/orders.yaml notify[1] (webhook to 127.0.0.1)"]);

    let mut d = Dispatcher::new(&rules(dir.path(), &yaml)).unwrap().with_retry(quick());
    let out = d.dispatch(&quarantined(), at(0)).await;
    assert!(matches!(out[0].outcome, Outcome::Sent { .. }), "{out:?}");
    let Outcome::Failed { error, .. } = &out[1].outcome else { panic!("{out:?}") };
    assert_eq!(out[1].channel, "flows/orders.yaml notify[1] (webhook to 127.0.0.1)", "the failing one, by its position");
    assert!(error.to_string().starts_with("flows/orders.yaml notify[1] (webhook to 127.0.0.1): answered HTTP 404"), "{error}");
    assert!(!format!("{out:?}").contains("s3cret") && !format!("{out:?}").contains("services"), "{out:?}");
}

#[tokio::test]
async fn webhook_slack_and_teams_bodies() {
    let hook = HttpReceiver::start(&[]).await;
    let dir = tempdir();
    let yaml = format!(
        "- on: [quarantined]\n  webhook: {{ url: \"{}\", format: slack }}\n- on: [quarantined]\n  webhook: {{ url: \"{}\", format: teams }}\n",
        hook.url("/slack"),
        hook.url("/teams")
    );
    for rule in rules(dir.path(), &yaml) {
        rule.notifier().unwrap().send(&quarantined(), 2).await.unwrap();
    }
    let reqs = hook.requests();
    let text = "wharf: flow roster-import: file in/a.csv quarantined: row 3: column `email` is empty (all of it and what next: `wharf quarantine show roster-import in/a.csv`) (2 similar notices held back)";
    assert_eq!(reqs[0].json(), json!({ "text": text }));
    let teams = reqs[1].json();
    assert_eq!(teams["type"], "message");
    let card = &teams["attachments"][0];
    assert_eq!(card["contentType"], "application/vnd.microsoft.card.adaptive");
    assert_eq!((card["content"]["type"].as_str(), card["content"]["version"].as_str()), (Some("AdaptiveCard"), Some("1.4")));
    assert_eq!(card["content"]["body"][0]["text"], text);
    let facts = card["content"]["body"][1]["facts"].as_array().unwrap();
    assert!(facts.contains(&json!({ "title": "Subject", "value": "in/a.csv" })), "{facts:?}");
}

#[tokio::test]
async fn webhook_custom_template_renders_json() {
    let hook = HttpReceiver::start(&[]).await;
    let dir = tempdir();
    std::fs::create_dir(dir.path().join("templates")).unwrap();
    std::fs::write(
        dir.path().join("templates/alert.json.hbs"),
        r#"{ "summary": "{{text}}", "where": "{{flow}}/{{subject}}", "facts": {{json facts}}, "n": {{held_back}} }"#,
    )
    .unwrap();
    let rule =
        &rules(dir.path(), &format!("- on: [all]\n  webhook: {{ url: \"{}\", template: templates/alert.json.hbs }}\n", hook.url("/")))[0];
    let mut notice = quarantined();
    notice.detail = "a \"quoted\" value\\ and a\nsecond line".into();
    rule.notifier().unwrap().send(&notice, 1).await.unwrap();
    let body = hook.requests()[0].json();
    assert_eq!(body["summary"], notice.text_with(1));
    assert_eq!((body["where"].as_str(), body["n"].as_u64()), (Some("roster-import/in/a.csv"), Some(1)));
    assert_eq!(body["facts"]["report"], "quarantine/a.csv.report.json");
}

/// A dispatcher sending `failed` notices (unthrottled) to `hook`, and such a notice.
fn to_hook(hook: &HttpReceiver, dir: &Path) -> (Dispatcher, Notice) {
    let rules = rules(dir, &format!("- on: [failed]\n  throttle: 0s\n  webhook: {{ url: \"{}\" }}\n", hook.url("/hooks/s3cret")));
    (Dispatcher::new(&rules).unwrap().with_retry(quick()), Notice::new("failed", "orders", at(0), "", "connection refused"))
}

#[tokio::test]
async fn webhook_retries_a_500_and_does_not_retry_a_404() {
    let hook = HttpReceiver::start(&[500, 200, 404]).await;
    let dir = tempdir();
    let (mut d, failed) = to_hook(&hook, dir.path());

    let out = d.dispatch(&failed, at(0)).await;
    assert!(matches!(out[0].outcome, Outcome::Sent { attempts: 2, held_back: 0 }), "{out:?}");
    assert_eq!(hook.requests().len(), 2);

    // Next answers: 404 (permanent), then 200 — which must not be asked for.
    let out = d.dispatch(&failed, at(1)).await;
    let Outcome::Failed { attempts: 1, error } = &out[0].outcome else { panic!("{out:?}") };
    assert_eq!(error.kind, ErrorKind::Permanent);
    assert_eq!(error.to_string(), "flows/orders.yaml notify[0] (webhook to 127.0.0.1): answered HTTP 404 Not Found: refused with 404");
    assert_eq!(hook.requests().len(), 3, "a 4xx is not retried");
}

/// A hook answering 429 is up but asks to slow down: retried like a 5xx, reported as
/// rate-limited (not as down, so a backlog to it waits instead of failing).
#[tokio::test]
async fn webhook_429_is_rate_limited_and_retried() {
    let hook = HttpReceiver::start(&[429, 200, 429, 429, 429]).await;
    let dir = tempdir();
    let (mut d, failed) = to_hook(&hook, dir.path());
    let out = d.dispatch(&failed, at(0)).await;
    assert!(matches!(out[0].outcome, Outcome::Sent { attempts: 2, held_back: 0 }), "{out:?}");
    let out = d.dispatch(&failed, at(1)).await;
    let Outcome::Failed { attempts: 3, error } = &out[0].outcome else { panic!("{out:?}") };
    assert_eq!(error.kind, ErrorKind::RateLimited, "{error}");
    assert!(
        error.to_string().starts_with("flows/orders.yaml notify[0] (webhook to 127.0.0.1): answered HTTP 429 Too Many Requests"),
        "{error}"
    );
}

/// Slack and Teams answer a burst with 429 and `Retry-After: SECONDS`: the next attempt waits
/// that long (before, the attempts followed each other within the backoff, 1.5 s in all by
/// default, every one refused, and the notice was lost for a hook asking for 1 s or more).
#[tokio::test]
async fn webhook_429_waits_as_long_as_its_retry_after_asks() {
    let hook = HttpReceiver::start(&[429, 503, 200]).await;
    hook.set_retry_after(1);
    let dir = tempdir();
    let (mut d, failed) = to_hook(&hook, dir.path());
    let out = d.dispatch(&failed, at(0)).await;
    assert!(matches!(out[0].outcome, Outcome::Sent { attempts: 3, held_back: 0 }), "{out:?}");
    let times: Vec<_> = hook.requests().iter().map(|r| r.at).collect();
    for pair in times.windows(2) {
        let waited = pair[1] - pair[0];
        assert!(waited >= Duration::from_secs(1), "retried after {waited:?}, not the 1 s the hook asked for");
    }
}

/// A hook answering 503 with `Retry-After` as an HTTP date (RFC 9110 allows it; some
/// gateways send it): the retry waits until then (before, the date was ignored and the retry
/// came after the short backoff, refused again).
#[tokio::test]
async fn webhook_503_waits_until_its_retry_after_date() {
    let hook = HttpReceiver::start(&[503, 200]).await;
    // Whole seconds: a date 2 s ahead is at least 1 s ahead of the answer's own `Date`.
    hook.set_retry_after_date(2);
    let dir = tempdir();
    let (mut d, failed) = to_hook(&hook, dir.path());
    let out = d.dispatch(&failed, at(0)).await;
    assert!(matches!(out[0].outcome, Outcome::Sent { attempts: 2, held_back: 0 }), "{out:?}");
    let times: Vec<_> = hook.requests().iter().map(|r| r.at).collect();
    let waited = times[1] - times[0];
    assert!(waited >= Duration::from_millis(900), "retried after {waited:?}, not at the date the hook gave");
}

/// An SMTP server answering 451 (a rate limit) is retried, and reported as deferred.
#[tokio::test]
async fn email_451_is_deferred_and_retried() {
    let smtp =
        SmtpReceiver::start(SmtpOptions { mail_reply: Some("451 4.7.1 Too many messages, slow down".into()), ..SmtpOptions::default() })
            .await;
    let dir = tempdir();
    let rules = rules(dir.path(), &email_yaml(&smtp, "SMTP_PASS", ""));
    let mut d = Dispatcher::new(&rules).unwrap().with_retry(quick());
    let out = d.dispatch(&quarantined(), at(0)).await;
    let Outcome::Failed { attempts: 3, error } = &out[0].outcome else { panic!("{out:?}") };
    assert_eq!(error.kind, ErrorKind::Deferred, "{error}");
    assert!(error.to_string().contains("451"), "{error}");
}

/// An SMTP server answering 421 ("closing, come back later") is asked again after the
/// deferral, doubled each time (as a mail transfer agent does), then given up: before, the
/// three attempts came within 1.5 s (0.5 s then 1 s), each refused, as for a network blip.
#[tokio::test]
async fn email_421_is_asked_again_after_the_deferral_not_the_short_backoff() {
    let smtp = SmtpReceiver::start(SmtpOptions {
        mail_reply: Some("421 4.3.2 Service not available, closing transmission channel".into()),
        ..SmtpOptions::default()
    })
    .await;
    let dir = tempdir();
    let rules = rules(dir.path(), &email_yaml(&smtp, "SMTP_PASS", ""));
    let retry = RetryPolicy { deferral: Duration::from_millis(300), ..quick() };
    let mut d = Dispatcher::new(&rules).unwrap().with_retry(retry);
    let started = std::time::Instant::now();
    let out = d.dispatch(&quarantined(), at(0)).await;
    let Outcome::Failed { attempts: 3, error } = &out[0].outcome else { panic!("{out:?}") };
    assert_eq!(error.kind, ErrorKind::Deferred, "{error}");
    assert!(error.to_string().contains("421"), "{error}");
    assert!(started.elapsed() >= Duration::from_millis(900), "waited 300 ms then 600 ms: {:?}", started.elapsed());
}

/// A mailbox busy for now (450) is asked again after the deferral, and the notice then goes
/// out (before: after 1 ms here, 0.5 s by default).
#[tokio::test]
async fn email_to_a_busy_mailbox_is_sent_after_the_deferral() {
    let smtp = SmtpReceiver::start(SmtpOptions { busy_once: vec!["ops@example.com".into()], ..SmtpOptions::default() }).await;
    let dir = tempdir();
    let rules = rules(dir.path(), &email_yaml(&smtp, "SMTP_PASS", ""));
    let retry = RetryPolicy { deferral: Duration::from_secs(1), ..quick() };
    let mut d = Dispatcher::new(&rules).unwrap().with_retry(retry);
    let started = std::time::Instant::now();
    let out = d.dispatch(&quarantined(), at(0)).await;
    assert!(matches!(out[0].outcome, Outcome::Sent { attempts: 2, .. }), "{out:?}");
    assert!(started.elapsed() >= Duration::from_secs(1), "asked again after {:?}", started.elapsed());
    assert_eq!(smtp.messages().len(), 1, "sent once");
}

/// A hook answering 500 with a body of several lines: the error quotes it on one line (it
/// broke the log line in several before).
#[tokio::test]
async fn a_refusing_answer_of_several_lines_is_quoted_on_one_line() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = vec![0; 65536];
            let _ = stream.read(&mut buf).await;
            let body = "internal\r\nerror\n\n{\"ok\": false}\n";
            let answer = format!("HTTP/1.1 500 Internal Server Error\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    let dir = tempdir();
    let rule = &rules(dir.path(), &format!("- on: [failed]\n  webhook: {{ url: \"http://127.0.0.1:{port}/hooks/s3cret\" }}\n"))[0];
    let err = rule.notifier().unwrap().send(&quarantined(), 0).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transient, "{err}");
    assert_eq!(err.message, "answered HTTP 500 Internal Server Error: internal ⏎ error ⏎ {\"ok\": false}");
}

/// A hook refusing with a body that does not end (a proxy's error page streamed slowly, or
/// without end): the error quotes its start at once. Before, the whole body was read into
/// memory, however large, until the timeout — which then lost the quote too.
#[tokio::test]
async fn a_refusal_with_an_endless_body_is_quoted_from_its_start_at_once() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0; 65536];
                let _ = stream.read(&mut buf).await;
                let head = "HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: chunked\r\n\r\n";
                let _ = stream.write_all(head.as_bytes()).await;
                let chunk = format!("over quota {}\n", "x".repeat(4000));
                loop {
                    let framed = format!("{:x}\r\n{chunk}\r\n", chunk.len());
                    if stream.write_all(framed.as_bytes()).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            });
        }
    });
    let dir = tempdir();
    let rule =
        &rules(dir.path(), &format!("- on: [failed]\n  webhook: {{ url: \"http://127.0.0.1:{port}/hooks/s3cret\", timeout: 5s }}\n"))[0];
    let started = std::time::Instant::now();
    let err = rule.notifier().unwrap().send(&quarantined(), 0).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}: the body was read to its end", started.elapsed());
    assert_eq!(err.kind, ErrorKind::Transient, "{err}");
    assert!(err.message.starts_with("answered HTTP 503 Service Unavailable: over quota xxx"), "{err}");
}

#[tokio::test]
async fn webhook_connection_refused_is_transient_and_never_names_the_url() {
    let port = support::free_port();
    let dir = tempdir();
    let rule =
        &rules(dir.path(), &format!("- on: [failed]\n  webhook: {{ url: \"http://127.0.0.1:{port}/hooks/s3cret\", timeout: 5s }}\n"))[0];
    let err = rule.notifier().unwrap().send(&quarantined(), 0).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transient, "{err}");
    let text = err.to_string();
    // In plain words (was: "error sending request: client error (Connect): tcp connect error:
    // Connection refused (os error 111)"), naming host and port, never the path.
    assert_eq!(text, format!("flows/orders.yaml notify[0] (webhook to 127.0.0.1): cannot connect to 127.0.0.1:{port}: connection refused"));
}

#[tokio::test]
async fn webhook_over_https_trusts_its_ca_file_and_refuses_an_unknown_certificate_for_good() {
    let hook = HttpReceiver::start_tls(&[]).await;
    let dir = tempdir();
    let yaml = |ca: &str| format!("- on: [all]\n  webhook: {{ url: \"{}\"{ca} }}\n", hook.url("/hooks/s3cret"));

    // The test CA is not among the system's: refused, and retrying would not help.
    let untrusted = &rules(dir.path(), &yaml(""))[0];
    let err = untrusted.notifier().unwrap().send(&quarantined(), 0).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Permanent, "{err}");
    assert!(
        err.to_string().starts_with("flows/orders.yaml notify[0] (webhook to 127.0.0.1): ") && !err.to_string().contains("s3cret"),
        "{err}"
    );
    assert!(hook.requests().is_empty(), "nothing sent over an untrusted connection");

    let trusted = &rules(dir.path(), &yaml(&format!(", ca_file: \"{}\"", hook.ca().display())))[0];
    trusted.notifier().unwrap().send(&quarantined(), 0).await.unwrap();
    let req = &hook.requests()[0];
    assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", "/hooks/s3cret"));
    assert_eq!(req.json()["kind"], "quarantined");
}

fn email_yaml(smtp: &SmtpReceiver, password_var: &str, extra: &str) -> String {
    format!(
        "- on: [all]\n  email:\n    server: 127.0.0.1\n    port: {}\n    username: alerts\n    password: \"${{env:{password_var}}}\"\n    \
         ca_file: {}\n    from: \"wharf <wharf@example.com>\"\n    to: [ops@example.com, oncall@example.com]\n{extra}",
        smtp.port(),
        smtp.ca().display()
    )
}

#[tokio::test]
async fn email_over_starttls_with_auth_plain() {
    let smtp = SmtpReceiver::start(SmtpOptions::default()).await;
    let dir = tempdir();
    let rule = &rules(dir.path(), &email_yaml(&smtp, "SMTP_PASS", "    subject: \"[wharf] {{flow}}: {{kind}} {{subject}}\"\n"))[0];
    let notifier = rule.notifier().unwrap();
    assert_eq!(notifier.describe(), format!("flows/orders.yaml notify[0] (email via 127.0.0.1:{})", smtp.port()));
    notifier.send(&quarantined(), 0).await.unwrap();

    let mail = &smtp.messages()[0];
    assert!(mail.tls, "sent after STARTTLS");
    assert_eq!(mail.user.as_deref(), Some("alerts"));
    assert_eq!(
        (mail.from.as_str(), mail.to.as_slice()),
        ("wharf@example.com", &["ops@example.com".to_string(), "oncall@example.com".to_string()][..])
    );
    assert_eq!(mail.header("Subject").as_deref(), Some("[wharf] roster-import: quarantined in/a.csv"));
    assert_eq!(mail.header("From").as_deref(), Some("wharf <wharf@example.com>"));
    let body = mail.body();
    assert!(body.starts_with("wharf: flow roster-import: file in/a.csv quarantined: row 3: column `email` is empty (all of it and what next: `wharf quarantine show roster-import in/a.csv`)\r\n"), "{body}");
    assert!(body.contains("Flow:    roster-import") && body.contains("\"report\": \"quarantine/a.csv.report.json\""), "{body}");
}

/// One address the server refuses (someone who left): the others still get the notice, once,
/// and the error names the refused address. Before, the one refusal failed the whole send,
/// for good: nobody got any notice of the rule.
#[tokio::test]
async fn email_to_a_refused_address_still_reaches_the_others_once() {
    let smtp = SmtpReceiver::start(SmtpOptions { unknown: vec!["ops@example.com".into()], ..SmtpOptions::default() }).await;
    let dir = tempdir();
    let rule = &rules(dir.path(), &email_yaml(&smtp, "SMTP_PASS", ""))[0];
    let mut d = Dispatcher::new(std::slice::from_ref(rule)).unwrap().with_retry(quick());
    let out = d.dispatch(&quarantined(), at(0)).await;
    let Outcome::Failed { attempts: 1, error } = &out[0].outcome else { panic!("{out:?}") };
    assert_eq!(error.kind, ErrorKind::Permanent, "not retried: the others would get it twice: {error}");
    assert!(error.message.contains("ops@example.com") && error.message.contains("550"), "names the refused address: {error}");
    assert!(error.message.contains("sent to oncall@example.com"), "{error}");
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].to, ["oncall@example.com"]);
    assert!(mails[0].header("To").unwrap().contains("ops@example.com"), "the message still shows every addressee");
}

/// Sent to each address alone (one is refused), one fails for now: the retry sends to that
/// one only, not again to those that got it.
#[tokio::test]
async fn email_retried_after_some_addresses_got_it_sends_to_the_others_only() {
    let smtp = SmtpReceiver::start(SmtpOptions {
        unknown: vec!["gone@example.com".into()],
        busy_once: vec!["ops@example.com".into()],
        ..SmtpOptions::default()
    })
    .await;
    let dir = tempdir();
    let yaml = email_yaml(&smtp, "SMTP_PASS", "").replace("to: [ops@example.com,", "to: [gone@example.com, ops@example.com,");
    let rule = &rules(dir.path(), &yaml)[0];
    let mut d = Dispatcher::new(std::slice::from_ref(rule)).unwrap().with_retry(quick());
    let out = d.dispatch(&quarantined(), at(0)).await;
    let Outcome::Failed { attempts: 2, error } = &out[0].outcome else { panic!("{out:?}") };
    assert!(error.message.starts_with("refused for gone@example.com: permanent error (550)"), "{error}");
    assert!(error.message.ends_with("; sent to oncall@example.com, ops@example.com"), "{error}");
    let to: Vec<Vec<String>> = smtp.messages().into_iter().map(|m| m.to).collect();
    assert_eq!(to, [["oncall@example.com"], ["ops@example.com"]], "each once");
}

#[tokio::test]
async fn email_with_auth_login_and_the_default_subject() {
    let smtp = SmtpReceiver::start(SmtpOptions { mechanisms: "LOGIN".into(), ..SmtpOptions::default() }).await;
    let dir = tempdir();
    let rule = &rules(dir.path(), &email_yaml(&smtp, "SMTP_PASS", ""))[0];
    let mut notice = Notice::new("failed", "orders", at(0), "", "endpoint acme: connection refused");
    notice.detail.push_str("\n.leading dot line");
    rule.notifier().unwrap().send(&notice, 3).await.unwrap();
    let mail = &smtp.messages()[0];
    assert_eq!(mail.user.as_deref(), Some("alerts"));
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("wharf: flow orders: run failed: endpoint acme: connection refused (3 similar notices held back)")
    );
    assert!(mail.body().contains("\r\n.leading dot line\r\n"), "dot-stuffing undone: {}", mail.body());
}

#[tokio::test]
async fn email_wrong_password_is_permanent_and_names_the_server_not_the_password() {
    let smtp = SmtpReceiver::start(SmtpOptions::default()).await;
    let dir = tempdir();
    let rules = rules(dir.path(), &email_yaml(&smtp, "WRONG_PASS", ""));
    let mut d = Dispatcher::new(&rules).unwrap().with_retry(quick());
    let out = d.dispatch(&quarantined(), at(0)).await;
    let Outcome::Failed { attempts: 1, error } = &out[0].outcome else { panic!("{out:?}") };
    assert_eq!(error.kind, ErrorKind::Permanent);
    let text = error.to_string();
    assert!(
        text.starts_with(&format!("flows/orders.yaml notify[0] (email via 127.0.0.1:{}): permanent error (535)", smtp.port())),
        "{text}"
    );
    assert!(!text.contains("wrong-s3cret") && !format!("{error:?}").contains("wrong-s3cret"), "{text}");
    assert!(smtp.messages().is_empty());
}

#[tokio::test]
async fn email_to_a_server_whose_certificate_is_not_trusted_is_refused() {
    let smtp = SmtpReceiver::start(SmtpOptions::default()).await;
    let dir = tempdir();
    let yaml = email_yaml(&smtp, "SMTP_PASS", "").replace(&format!("    ca_file: {}\n", smtp.ca().display()), "");
    let err = rules(dir.path(), &yaml)[0].notifier().unwrap().send(&quarantined(), 0).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Permanent, "{err}");
    assert!(smtp.messages().is_empty());
}

fn script(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test]
async fn command_gets_the_notice_as_json_on_stdin() {
    let dir = tempdir();
    std::fs::create_dir(dir.path().join("scripts")).unwrap();
    script(&dir.path().join("scripts"), "alert.sh", "cat > got.json\nprintf '%s %s %s' \"$WHARF_EVENT\" \"$WHARF_FLOW\" \"$1\" > got.env");
    let rule = &rules(dir.path(), "- on: [quarantined]\n  command: { run: [scripts/alert.sh, --flag] }\n")[0];
    rule.notifier().unwrap().send(&quarantined(), 0).await.unwrap();
    let got: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("got.json")).unwrap()).unwrap();
    assert_eq!((got["kind"].as_str(), got["subject"].as_str(), got["run"].as_u64()), (Some("quarantined"), Some("in/a.csv"), Some(12)));
    assert_eq!(got["text"], quarantined().text());
    assert_eq!(std::fs::read_to_string(dir.path().join("got.env")).unwrap(), "quarantined roster-import --flag");
}

#[tokio::test]
async fn command_failures_exit_status_and_timeout() {
    let dir = tempdir();
    script(
        dir.path(),
        "fails.sh",
        "cat >/dev/null\necho 'step one ok'\necho 'token refused' >&2\necho 'alert service said no' >&2\nexit 3",
    );
    script(dir.path(), "hangs.sh", "echo 'waiting for lock on /var/db' >&2\nexec sleep 600");
    let rules = rules(
        dir.path(),
        "- on: [all]\n  command: { run: [./fails.sh] }\n- on: [all]\n  command: { run: [./hangs.sh], timeout: 300ms }\n- on: [all]\n  command: { run: [./missing.sh] }\n",
    );
    let err = rules[0].notifier().unwrap().send(&quarantined(), 0).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Permanent);
    assert!(
        err.to_string().ends_with("fails.sh): exited with status 3; its stderr ends: token refused ⏎ alert service said no"),
        "stderr on one line: {err}"
    );
    let err = rules[1].notifier().unwrap().send(&quarantined(), 0).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transient);
    assert!(
        err.to_string().ends_with("hangs.sh): did not finish within 300ms and was killed; its stderr ends: waiting for lock on /var/db"),
        "what it wrote before it hung: {err}"
    );
    let err = rules[2].notifier().unwrap().send(&quarantined(), 0).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Permanent);
    assert!(err.message.starts_with("cannot start: ") && !err.message.contains("os error"), "{err}");
}

#[tokio::test]
async fn throttling_holds_back_repeats_and_never_recoveries() {
    let flow_hook = HttpReceiver::start(&[]).await;
    let global_hook = HttpReceiver::start(&[]).await;
    let dir = tempdir();
    let global = rules(dir.path(), &format!("- on: [recovered]\n  webhook: {{ url: \"{}\" }}\n", global_hook.url("/global")));
    let flow_rules = rules(dir.path(), &format!("- on: [failed, recovered]\n  webhook: {{ url: \"{}\" }}\n", flow_hook.url("/flow")));
    let mut d = Dispatcher::new(&global).unwrap().with_retry(quick());
    d.set_flow("roster-import", &flow_rules).unwrap();

    let failed = |s: i64| Notice::new("failed", "roster-import", at(s), "", "connection refused");
    let outcomes: Vec<_> =
        [d.dispatch(&failed(0), at(0)).await, d.dispatch(&failed(60), at(60)).await, d.dispatch(&failed(120), at(120)).await]
            .into_iter()
            .map(|o| o[0].outcome.clone())
            .collect();
    assert!(
        matches!(outcomes[..], [Outcome::Sent { held_back: 0, .. }, Outcome::HeldBack { held: 1 }, Outcome::HeldBack { held: 2 }]),
        "{outcomes:?}"
    );
    assert_eq!(flow_hook.requests().len(), 1, "3 failed notices within the window: 1 sent");

    // Another flow's notice goes to no flow rule of roster-import's (and no global rule matches).
    assert!(d.dispatch(&Notice::new("failed", "other", at(130), "", "x"), at(130)).await.is_empty());

    let out = d.dispatch(&failed(3600), at(3600)).await;
    assert!(matches!(out[0].outcome, Outcome::Sent { held_back: 2, .. }), "{out:?}");
    let body = flow_hook.requests()[1].json();
    assert_eq!(body["held_back"], 2);
    assert!(body["text"].as_str().unwrap().ends_with("(2 similar notices held back)"), "{body}");

    for s in [3601, 3602] {
        let out = d.dispatch(&Notice::new("recovered", "roster-import", at(s), "", ""), at(s)).await;
        assert_eq!(out.len(), 2, "the flow's rule and the global one: {out:?}");
        assert!(out.iter().all(|d| matches!(d.outcome, Outcome::Sent { .. })), "{out:?}");
    }
    assert_eq!(flow_hook.requests().len(), 4, "recoveries are never held back");
    assert_eq!(global_hook.requests().len(), 2);
}

#[test]
fn a_flow_file_notify_section_is_checked_with_positions() {
    let dir = tempdir();
    let file = dir.path().join("f.yaml");
    let text = "name: f
endpoints: { l: { type: local, root: ./x } }
source: { endpoint: l, path: /in }
sinks: [ { endpoint: l, path: /out } ]
notify:
  - on: [failed, quarantined]
    webhook: { url: \"${env:TOKEN}\" }
  - on: [failed, nonsense]
    email: { server: smtp.example.com, from: a@example.com, to: [b@example.com], password: \"${env:SMTP_PASS}\" }
";
    let errs = wharf::config::load_flow_str_with_env(text, &file, &env).unwrap_err();
    let shown: Vec<String> = errs.iter().map(|d| format!("{}:{}: {} (at {})", d.line, d.col, d.message, d.yaml_path)).collect();
    assert!(shown.iter().any(|s| s.starts_with("7:21: is not a valid URL") && s.ends_with("(at /notify/0/webhook/url)")), "{shown:#?}");
    assert!(shown.iter().any(|s| s.starts_with("8:18: unknown value") && s.contains("nonsense")), "{shown:#?}");
    assert!(!shown.concat().contains("t0ken"), "{shown:#?}");

    let good = text
        .replace("${env:TOKEN}", "https://hooks.example.com/x")
        .replace("failed, nonsense", "failed")
        .replace(", password: \"${env:SMTP_PASS}\"", "");
    let flow = wharf::config::load_flow_str_with_env(&good, &file, &env).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(flow.notify.len(), 2);
    assert_eq!(flow.notify[1].origin, format!("{} notify[1]", file.display()), "named by the flow file and position");
    assert!(flow.notify[0].matches("quarantined") && !flow.notify[1].matches("quarantined"));
}

/// What `wharf serve` (a real process, `--log-format format`) logs while a trigger's run
/// cannot reach its server and its notices fail: a webhook to a closed port, a command that
/// writes two stderr lines and exits 4. Every line of it is one log event.
fn serve_log_of_failing_notices(format: &str) -> (String, u16) {
    let dir = tempdir();
    let (flows, state) = (dir.path().join("flows"), dir.path().join("state"));
    std::fs::create_dir(&flows).unwrap();
    std::fs::write(dir.path().join("known_hosts"), "").unwrap();
    script(&flows, "alert.sh", "cat >/dev/null\necho 'line one' >&2\necho 'line two' >&2\nexit 4");
    let (sftp_port, hook_port) = (support::free_port(), support::free_port());
    let flow = format!(
        "name: a
endpoints:
  src: {{ type: sftp, host: 127.0.0.1, port: {sftp_port}, user: x, auth: {{ password: y }}, host_key: {{ known_hosts: {} }} }}
  dst: {{ type: local, root: ../out }}
source: {{ endpoint: src, path: /in }}
sinks: [ {{ endpoint: dst, path: / }} ]
alerts: {{ unreachable_after: 1 }}
notify:
  - on: [unreachable]
    webhook: {{ url: \"http://127.0.0.1:{hook_port}/hooks/T0/s3cret?token=s3cret\" }}
  - on: [unreachable]
    command: {{ run: [./alert.sh] }}
",
        dir.path().join("known_hosts").display()
    );
    std::fs::write(flows.join("a.yaml"), flow).unwrap();
    let log = dir.path().join("serve.log");
    let mut serve = support::wharf(&state)
        .env("RUST_LOG", "wharf=info")
        .args(["--log-format", format, "serve", "--flows", "flows"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let wait_for = |what: &str, cond: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !cond() {
            assert!(std::time::Instant::now() < deadline, "{what}: {}", std::fs::read_to_string(&log).unwrap_or_default());
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for("the daemon's discovery file", &|| state.join("serve.json").exists());
    let trigger = support::wharf(&state).args(["trigger", "a"]).output().unwrap();
    assert!(trigger.status.success(), "{}", support::text(&trigger));
    // Both notices failed for good: the command at once, the webhook after three attempts.
    let failed = || std::fs::read_to_string(&log).unwrap().lines().filter(|l| l.contains("Notice not sent.")).count();
    wait_for("two notices failing", &|| failed() >= 2);
    // SAFETY: kill(2) on a child we own; no memory is shared.
    unsafe { libc::kill(serve.id() as i32, libc::SIGTERM) };
    serve.wait().unwrap();
    (std::fs::read_to_string(&log).unwrap(), hook_port)
}

/// The lines an operator reads when notices fail (before: `flow="a"` beside `flow=a`,
/// `subject=""`, `result=Started`, `http=None`, every webhook named `webhook to 127.0.0.1`, "error sending
/// request: client error (Connect): tcp connect error: Connection refused (os error 111)", and
/// the command's stderr breaking the line in two).
#[test]
fn serve_logs_failing_notices_on_one_line_each_in_plain_words() {
    let (log, hook_port) = serve_log_of_failing_notices("text");
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.iter().all(|l| l.starts_with("20")), "a line without its timestamp: a log event was split\n{log}");
    let notices: Vec<&str> = lines.iter().copied().filter(|l| l.contains("Notice not sent")).collect();
    let hook = format!(
        "channel=flows/a.yaml notify[0] (webhook to 127.0.0.1) attempts=3 error_kind=transient error=cannot connect to 127.0.0.1:{hook_port}: connection refused"
    );
    assert!(notices.iter().any(|l| l.ends_with(&hook)), "{log}");
    let command = "channel=flows/a.yaml notify[1] (command ";
    let stderr = "error_kind=permanent error=exited with status 4; its stderr ends: line one ⏎ line two";
    assert!(notices.iter().any(|l| l.contains(command) && l.ends_with(stderr)), "{log}");
    assert!(notices.iter().all(|l| l.contains(" flow=a kind=unreachable channel=")), "no quotes, no empty subject: {log}");
    assert!(lines.iter().any(|l| l.contains("Run triggered over the control socket. flow=a result=started")), "{log}");
    assert!(!log.contains("flow=\"a\"") && !log.contains("result=Started") && !log.contains("http=None"), "{log}");
    assert!(!log.contains("s3cret"), "{log}");
    assert!(notices.iter().all(|l| !l.contains("os error") && !l.contains("client error")), "{log}");
}

/// The same in JSON: one event a line, the subject left out when the notice has none.
#[test]
fn serve_logs_failing_notices_as_one_json_event_a_line() {
    let (log, hook_port) = serve_log_of_failing_notices("json");
    let events: Vec<serde_json::Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON event ({e}): {l}\n{log}"))).collect();
    let failed: Vec<&serde_json::Value> = events.iter().filter(|e| e["message"] == "Notice not sent.").collect();
    assert_eq!(failed.len(), 2, "{log}");
    assert!(failed.iter().all(|e| e.get("subject").is_none() && e["flow"] == "a"), "{log}");
    let hook = failed.iter().find(|e| e["channel"] == "flows/a.yaml notify[0] (webhook to 127.0.0.1)").expect("the webhook's");
    assert_eq!(hook["error"], format!("cannot connect to 127.0.0.1:{hook_port}: connection refused"));
    let command = failed.iter().find(|e| e["error_kind"] == "permanent").expect("the command's");
    assert_eq!(command["error"], "exited with status 4; its stderr ends: line one ⏎ line two");
}

/// `wharf serve` (a real process, debug log to `log`) on the flows of `dir/flows`.
fn serve(dir: &Path, log: &str) -> std::process::Child {
    support::wharf(&dir.join("state"))
        .env("RUST_LOG", "wharf=debug")
        .args(["serve", "--flows", "flows"])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join(log)).unwrap())
        .spawn()
        .unwrap()
}

/// Polls `cond` every 50 ms until it holds; panics after 30 s, quoting `log`.
async fn wait_until(what: &str, log: &Path, cond: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts `wharf serve` (logging to `log`), lets its notifier read the event log and send
/// what it would, and stops it cleanly (SIGTERM).
async fn start_and_stop(dir: &Path, log: &str) {
    let mut daemon = serve(dir, log);
    let path = dir.join(log);
    wait_until("the notifier to read the log", &path, || {
        std::fs::read_to_string(&path).unwrap_or_default().contains("Notifier reading the event log.")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // SAFETY: kill(2) on a child we own; no memory is shared.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    daemon.wait().unwrap();
}

/// A notice held back by a throttle survives `kill -9` of the daemon: the next start sends
/// it, the latest with its count, once; a clean restart after that sends nothing again.
/// Before, throttle windows and held notices lived only in memory while the cursor had passed
/// their events: after the crash the operator never heard of the runs that failed meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_held_back_by_a_throttle_survives_a_crash_of_the_daemon() {
    let hook = HttpReceiver::start(&[]).await;
    let tmp = tempdir();
    let dir = tmp.path();
    for sub in ["flows", "src", "dst"] {
        std::fs::create_dir(dir.join(sub)).unwrap();
    }
    let flow = format!(
        "name: a
endpoints:
  src: {{ type: local, root: ../src }}
  dst: {{ type: local, root: ../dst }}
source:
  endpoint: src
  path: /
  include: ['*.csv']
  command:
    run: [sh, -c, 'echo the export failed >&2; exit 3']
    name: out.csv
sinks: [ {{ endpoint: dst, path: / }} ]
notify:
  - on: [failed]
    throttle: 1h
    webhook: {{ url: \"{}\" }}
",
        hook.url("/hook")
    );
    std::fs::write(dir.join("flows/a.yaml"), flow).unwrap();
    let state = dir.join("state");
    let (log, log2) = (dir.join("serve-1.log"), dir.join("serve-2.log"));
    let trigger = || {
        let t = support::wharf(&state).args(["trigger", "a"]).output().unwrap();
        assert!(t.status.success(), "{}", support::text(&t));
    };
    let held = || std::fs::read_to_string(&log).unwrap_or_default().matches("Notice held back by the throttle.").count();

    let mut daemon = serve(dir, "serve-1.log");
    wait_until("the daemon's discovery file", &log, || state.join("serve.json").exists()).await;
    trigger();
    wait_until("the first failure's notice", &log, || hook.requests().len() == 1).await;
    for n in 1..=2 {
        trigger();
        wait_until("a failure's notice held back", &log, || held() == n).await;
    }
    // The cursor is stored past all three events (at once when the notifier is idle): read
    // beside the daemon, as the CLI does. Killed before that, the events would be read again.
    let stored = || {
        let l = wharf::ledger::Ledger::open_read_only(&state.join("ledger.redb")).ok()?;
        Some((l.notify_cursor().ok()??, l.last_event_seq().ok()?))
    };
    wait_until("the cursor stored past the three events", &log, || stored() == Some((3, 3))).await;
    daemon.kill().unwrap(); // SIGKILL
    daemon.wait().unwrap();
    assert_eq!(hook.requests().len(), 1, "the two repeats were held back");

    let mut daemon = serve(dir, "serve-2.log");
    wait_until("the held-back notice, after the crash", &log2, || hook.requests().len() == 2).await;
    let body = hook.requests()[1].json();
    assert_eq!((body["kind"].as_str(), body["run"].as_u64(), body["held_back"].as_u64()), (Some("failed"), Some(3), Some(1)), "{body}");
    // SAFETY: kill(2) on a child we own; no memory is shared.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    daemon.wait().unwrap();

    // A clean restart: nothing is held back any more, nothing is sent again.
    start_and_stop(dir, "serve-3.log").await;
    assert_eq!(hook.requests().len(), 2, "sent once: {:#?}", hook.requests().iter().map(|r| r.json()).collect::<Vec<_>>());
}

/// A run summary whose send is not over when the daemon is killed (`kill -9`) is sent at the
/// next start, once; a clean restart after that sends nothing again. Before, summaries were
/// built in memory only: a crash (or a stop cut off by its grace) before the send lost them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_summary_not_sent_yet_survives_a_crash_of_the_daemon() {
    let hook = HttpReceiver::start(&[]).await;
    let tmp = tempdir();
    let dir = tmp.path();
    for sub in ["flows", "src", "dst"] {
        std::fs::create_dir(dir.join(sub)).unwrap();
    }
    std::fs::write(dir.join("src/a.csv"), "x\n").unwrap();
    let flow = format!(
        "name: a
endpoints:
  src: {{ type: local, root: ../src }}
  dst: {{ type: local, root: ../dst }}
source: {{ endpoint: src, path: /, include: ['*.csv'] }}
sinks: [ {{ endpoint: dst, path: / }} ]
notify:
  - on: [summary]
    webhook: {{ url: \"{}\" }}
",
        hook.url("/hook")
    );
    std::fs::write(dir.join("flows/a.yaml"), flow).unwrap();
    let state = dir.join("state");
    let (log, log2) = (dir.join("serve-1.log"), dir.join("serve-2.log"));
    let summaries =
        || hook.requests().iter().filter(|r| r.json()["kind"] == "summary").map(|r| r.json()["run"].as_u64()).collect::<Vec<_>>();

    // The webhook takes its time: the summary's send is under way when the daemon dies.
    hook.set_pace(Duration::from_secs(60));
    let mut daemon = serve(dir, "serve-1.log");
    wait_until("the daemon's discovery file", &log, || state.join("serve.json").exists()).await;
    let t = support::wharf(&state).args(["trigger", "a"]).output().unwrap();
    assert!(t.status.success(), "{}", support::text(&t));
    wait_until("the summary's send to start", &log, || summaries().len() == 1).await;
    let run = summaries()[0];
    daemon.kill().unwrap(); // SIGKILL
    daemon.wait().unwrap();

    hook.set_pace(Duration::ZERO);
    let mut daemon = serve(dir, "serve-2.log");
    wait_until("the summary, after the crash", &log2, || summaries().len() == 2).await;
    assert_eq!(summaries()[1], run, "the same run's summary");
    let body = hook.requests().last().unwrap().json();
    assert_eq!(body["facts"]["counts"]["delivered"], 1, "{body}");
    // Stored as sent once the send is over (at once: the notifier is idle).
    let pending = || wharf::ledger::Ledger::open_read_only(&state.join("ledger.redb")).ok()?.notify_summaries().ok();
    wait_until("the summary no longer pending", &log2, || pending().is_some_and(|p| p.is_empty())).await;
    // SAFETY: kill(2) on a child we own; no memory is shared.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    daemon.wait().unwrap();

    // A clean restart: nothing is sent again.
    start_and_stop(dir, "serve-3.log").await;
    assert_eq!(summaries(), [run, run], "sent once after the crash");
}

/// A hook answering 429 to everything (`Retry-After: 10`) with more notices than its lane holds
/// (256): handing them out never waits for it — each beyond the lane waits beside it — and
/// another rule's hook gets every notice at once. Before, each notice finding the lane full
/// held up the caller (the daemon's notifier: every other channel, and the cursor) for one
/// attempt timeout (2 minutes by default), then failed.
#[tokio::test]
async fn a_rate_limited_hook_with_a_full_lane_holds_up_no_one() {
    let (limited, fine) = (HttpReceiver::start(&[429; 4000]).await, HttpReceiver::start(&[]).await);
    limited.set_retry_after(10);
    let dir = tempdir();
    let yaml = format!(
        "- on: [failed]\n  throttle: 0s\n  webhook: {{ url: \"{}\" }}\n- on: [failed]\n  throttle: 0s\n  webhook: {{ url: \"{}\" }}\n",
        limited.url("/limited"),
        fine.url("/fine")
    );
    let retry = RetryPolicy { attempt_timeout: Duration::from_secs(3), rate_limits: 4, ..quick() };
    let mut d = Dispatcher::new(&rules(dir.path(), &yaml)).unwrap().with_retry(retry);
    let mut flying = Vec::new();
    let began = tokio::time::timeout(Duration::from_secs(10), async {
        for s in 0..300 {
            for started in d.begin(&Notice::new("failed", "orders", at(s), "", &format!("at {s}")), at(s)).await {
                if let wharf::notify::Started::Sending(f) = started {
                    flying.push(f);
                }
            }
        }
    })
    .await;
    assert!(began.is_ok(), "handing out 300 notices waited for the rate-limited hook");
    assert_eq!(flying.len(), 600, "every notice handed to both hooks");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while fine.requests().len() < 300 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fine.requests().len(), 300, "the other hook got every notice");
    assert!(limited.requests().len() < 5, "the rate-limited hook is asked at its own pace");
}

/// A server that drops the connection before answering: was lettre's bare `response error:
/// incomplete response`; now said in wharf's words, naming the channel and the server, never
/// the password, and tried again (transient).
#[tokio::test]
async fn email_to_a_server_that_closes_the_connection_says_so() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepts = tokio::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else { return };
            drop(conn);
        }
    });
    let dir = tempdir();
    let yaml = format!(
        "- on: [all]\n  email:\n    server: 127.0.0.1\n    port: {port}\n    tls: none\n    username: alerts\n    \
         password: \"${{env:WRONG_PASS}}\"\n    from: wharf@example.com\n    to: [ops@example.com]\n"
    );
    let err = rules(dir.path(), &yaml)[0].notifier().unwrap().send(&quarantined(), 0).await.unwrap_err();
    let text = err.to_string();
    assert_eq!(err.kind, ErrorKind::Transient, "{text}");
    assert!(text.starts_with(&format!("flows/orders.yaml notify[0] (email via 127.0.0.1:{port}): ")), "{text}");
    assert!(text.contains(&format!("the server at 127.0.0.1:{port} closed the connection before answering")), "{text}");
    assert!(!text.contains("incomplete response") && !text.contains("wrong-s3cret"), "{text}");
    accepts.abort();
}
