//! The templates' unit tests.

use super::*;
use serde_json::json;

const HOSTILE: &str = "<script>alert(\"x\")</script> & 'y'";

#[test]
fn kinds_round_trip_by_name() {
    for kind in TemplateKind::ALL {
        assert_eq!(TemplateKind::parse(kind.as_str()), Some(kind));
        assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.as_str()));
    }
    assert_eq!(TemplateKind::parse("Magic_Link"), None);
    for kind in TemplateKind::ALL {
        for v in variables(kind) {
            assert!(VARIABLES.contains(v), "{v}");
        }
    }
}

#[test]
fn every_kind_renders_with_sample_vars() {
    for kind in TemplateKind::ALL {
        let vars = sample_vars(kind);
        let names: Vec<&str> = vars.0.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, variables(kind), "{kind:?}");
        assert!(vars.0.iter().all(|(_, v)| !v.is_empty()), "{kind:?}");

        let r = render(kind, None, &vars);
        assert!(!r.text.contains("{{") && !r.text.contains("}}"), "{kind:?}");
        assert!(!r.subject.contains("{{"), "{kind:?}");
        assert!(r.text.contains("Acme"), "{kind:?}");
        if kind.is_sms() {
            assert_eq!(r.html, None);
            assert_eq!(r.subject, "");
            assert_eq!(r.text, "482915 is your Acme verification code.");
            continue;
        }
        assert!(!r.subject.is_empty() && !r.subject.contains('\n'));
        let html = r.html.expect("email kinds have html");
        assert!(!html.contains("{{"), "{kind:?}");
        assert!(html.starts_with("<!DOCTYPE html>"));
        if let Some(link) = vars.get("link") {
            assert!(r.text.contains(link), "{kind:?}");
            assert!(html.contains(&format!("href=\"{link}\"")), "{kind:?}");
        }
        if vars.get("code").is_some() {
            assert!(r.text.contains("482915") && html.contains("monospace"));
        }
    }
}

#[test]
fn defaults_pass_their_own_validation() {
    for kind in TemplateKind::ALL {
        let d = default_template(kind);
        let over = TemplateOverride {
            subject: (!kind.is_sms()).then(|| d.subject.to_string()),
            text: Some(d.text.to_string()),
            html: d.html.map(str::to_string),
        };
        validate_override(kind, &over).unwrap();
    }
}

#[test]
fn html_escapes_values_text_does_not() {
    let vars = sample_vars(TemplateKind::MagicLink).with("project_name", HOSTILE);
    let r = render(TemplateKind::MagicLink, None, &vars);
    let html = r.html.unwrap();
    assert!(!html.contains("<script>"));
    assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"));
    assert!(r.text.contains(HOSTILE));
    assert!(r.subject.contains(HOSTILE));
}

#[test]
fn line_breaks_in_values_do_not_reach_the_subject() {
    let vars = sample_vars(TemplateKind::MagicLink)
        .with("project_name", "Acme\r\nBcc: victim@example.com\n");
    let r = render(TemplateKind::MagicLink, None, &vars);
    assert!(!r.subject.contains('\r') && !r.subject.contains('\n'));
    assert_eq!(r.subject, "Sign in to Acme  Bcc: victim@example.com ");
    assert!(r.text.contains("Acme\r\nBcc"));
}

#[test]
fn override_replaces_only_the_fields_it_sets() {
    let vars = sample_vars(TemplateKind::EmailCode);
    let default = render(TemplateKind::EmailCode, None, &vars);
    let over = TemplateOverride {
        subject: Some("Your code for {{ project_name }}".into()),
        ..Default::default()
    };
    let r = render(TemplateKind::EmailCode, Some(&over), &vars);
    assert_eq!(r.subject, "Your code for Acme");
    assert_eq!(r.text, default.text);
    assert_eq!(r.html, default.html);

    let sms = TemplateOverride {
        text: Some("Code: {{code}} ({{expires_in}})".into()),
        ..Default::default()
    };
    let r = render(
        TemplateKind::PhoneCode,
        Some(&sms),
        &sample_vars(TemplateKind::PhoneCode),
    );
    assert_eq!(r.text, "Code: 482915 (15 minutes)");
    assert_eq!(r.html, None);
}

#[test]
fn missing_values_are_empty_and_values_are_not_expanded() {
    let vars = Vars::new().with("code", "{{project_name}}");
    let r = render(TemplateKind::PhoneCode, None, &vars);
    assert_eq!(r.text, "{{project_name}} is your  verification code.");
    // An unclosed `{{` in a template stays literal.
    let over = TemplateOverride {
        text: Some("a {{code}} b {{ c".into()),
        ..Default::default()
    };
    let r = render(
        TemplateKind::PhoneCode,
        Some(&over),
        &Vars::new().with("code", "1"),
    );
    assert_eq!(r.text, "a 1 b {{ c");
}

fn over(field: &str, value: &str) -> TemplateOverride {
    let mut o = TemplateOverride::default();
    let slot = match field {
        "subject" => &mut o.subject,
        "text" => &mut o.text,
        _ => &mut o.html,
    };
    *slot = Some(value.to_string());
    o
}

#[test]
fn validation_refuses_bad_overrides() {
    let ml = TemplateKind::MagicLink;
    assert_eq!(
        validate_override(ml, &over("html", "<p>{{foo}}</p>")).unwrap_err(),
        "settings.email_templates.magic_link.html: unknown variable {{foo}}"
    );
    assert_eq!(
        validate_override(ml, &over("text", "{{ foo }}")).unwrap_err(),
        "settings.email_templates.magic_link.text: unknown variable {{foo}}"
    );
    let err =
        validate_override(TemplateKind::EmailChangeNotice, &over("text", "{{link}}")).unwrap_err();
    assert!(
        err.starts_with(
            "settings.email_templates.email_change_notice.text: {{link}} is not available"
        ),
        "{err}"
    );
    let err = validate_override(ml, &over("text", "hi {{link")).unwrap_err();
    assert!(err.contains("not closed"), "{err}");
    let err = validate_override(ml, &over("subject", "Sign in\nBcc: x@example.com")).unwrap_err();
    assert_eq!(
        err,
        "settings.email_templates.magic_link.subject: must be a single line without control characters"
    );
    validate_override(ml, &over("subject", &"s".repeat(200))).unwrap();
    let err = validate_override(ml, &over("subject", &"s".repeat(201))).unwrap_err();
    assert!(err.contains("subject: longer than 200"), "{err}");
    validate_override(ml, &over("text", &"é".repeat(20_000))).unwrap();
    let err = validate_override(ml, &over("text", &"t".repeat(20_001))).unwrap_err();
    assert!(err.contains("text: longer than 20000"), "{err}");
    let err = validate_override(ml, &over("html", &"h".repeat(20_001))).unwrap_err();
    assert!(err.contains("html: longer than 20000"), "{err}");
    let err = validate_override(ml, &over("text", "  \n")).unwrap_err();
    assert!(err.contains("text: is empty"), "{err}");

    let pc = TemplateKind::PhoneCode;
    validate_override(pc, &over("text", "{{code}} for {{phone}}")).unwrap();
    assert_eq!(
        validate_override(pc, &over("html", "<b>{{code}}</b>")).unwrap_err(),
        "settings.email_templates.phone_code.html: not allowed, an SMS has only text"
    );
    let err = validate_override(pc, &over("subject", "Code")).unwrap_err();
    assert!(err.contains("phone_code.subject: not allowed"), "{err}");
    let err = validate_override(pc, &over("text", "{{link}}")).unwrap_err();
    assert!(err.contains("is not available in phone_code"), "{err}");
}

#[test]
fn parse_overrides_checks_structure() {
    assert_eq!(
        parse_overrides(&Value::Null).unwrap(),
        TemplateOverrides::new()
    );
    assert!(
        parse_overrides(&json!([]))
            .unwrap_err()
            .contains("must be an object")
    );
    let err = parse_overrides(&json!({"welcome": {"text": "hi"}})).unwrap_err();
    assert!(
        err.starts_with("settings.email_templates.welcome is not a known template"),
        "{err}"
    );
    let err = parse_overrides(&json!({"magic_link": {"body": "hi"}})).unwrap_err();
    assert_eq!(
        err,
        "settings.email_templates.magic_link.body is not a known field (subject, text, html)"
    );
    let err = parse_overrides(&json!({"magic_link": {"text": 5}})).unwrap_err();
    assert!(
        err.contains("magic_link.text must be a string or null"),
        "{err}"
    );
    let err = parse_overrides(&json!({"magic_link": "hi"})).unwrap_err();
    assert!(err.contains("magic_link must be an object"), "{err}");
    let err = parse_overrides(&json!({"phone_code": {"html": "<b>{{code}}</b>"}})).unwrap_err();
    assert!(err.contains("phone_code.html: not allowed"), "{err}");
    let err = parse_overrides(&json!({"magic_link": {"html": "{{foo}}"}})).unwrap_err();
    assert_eq!(
        err,
        "settings.email_templates.magic_link.html: unknown variable {{foo}}"
    );
    // serde itself refuses unknown fields too.
    assert!(serde_json::from_value::<TemplateOverride>(json!({"body": "x"})).is_err());
}

#[test]
fn parse_overrides_round_trips_through_serde_json() {
    let input = json!({
        "magic_link": {"subject": "Your {{project_name}} link", "text": null},
        "phone_code": {"text": "{{ code }} - {{project_name}}"},
        "invitation": {"html": "<p>{{inviter}} → {{tenant_name}}: <a href=\"{{link}}\">join</a></p>"}
    });
    let parsed = parse_overrides(&input).unwrap();
    assert_eq!(parsed.len(), 3);
    assert_eq!(parsed[&TemplateKind::MagicLink].text, None);

    let value = serde_json::to_value(&parsed).unwrap();
    assert_eq!(
        value,
        json!({
            "magic_link": {"subject": "Your {{project_name}} link"},
            "invitation": {"html": "<p>{{inviter}} → {{tenant_name}}: <a href=\"{{link}}\">join</a></p>"},
            "phone_code": {"text": "{{ code }} - {{project_name}}"}
        })
    );
    assert_eq!(parse_overrides(&value).unwrap(), parsed);
    let via_serde: TemplateOverrides = serde_json::from_value(value).unwrap();
    assert_eq!(via_serde, parsed);
}
