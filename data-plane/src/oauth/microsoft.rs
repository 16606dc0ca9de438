//! Microsoft's identity platform, multi-tenant. Its discovery document at
//! `.../common/v2.0` (or `organizations`, `consumers`) names the issuer
//! `https://login.microsoftonline.com/{tenantid}/v2.0`, a template: each
//! ID token's `iss` must be that template filled with the token's own
//! `tid`, and the tenant must be one the configured issuer admits. Its
//! `email` claim is not proven to belong to the user unless the token says
//! the domain's owner verified it (`xms_edov`) or the account is a
//! personal Microsoft account (whose address Microsoft verified).

use serde_json::Value;

use super::provider::OauthError;

/// The tenant of personal Microsoft accounts.
pub const CONSUMERS: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
const PLACEHOLDER: &str = "{tenantid}";

/// Whether `provider`'s discovered issuer is the multi-tenant template.
pub fn is_template(provider: &str, named: &str) -> bool {
    provider == "microsoft" && named.contains(PLACEHOLDER)
}

/// The configured issuer's tenant segment, when `named` (the discovered
/// issuer) is a template that `configured` fills.
fn segment<'a>(named: &str, configured: &'a str) -> Option<&'a str> {
    let (prefix, suffix) = named.split_once(PLACEHOLDER)?;
    let suffix = suffix.trim_end_matches('/');
    let seg = configured
        .trim_end_matches('/')
        .strip_prefix(prefix)?
        .strip_suffix(suffix)?;
    (!seg.is_empty() && !seg.contains('/')).then_some(seg)
}

/// Discovery: a template issuer stands for the configured one when the
/// configured issuer is the template with a tenant segment in its place.
pub fn template_covers(named: &str, configured: &str) -> bool {
    segment(named, configured).is_some()
}

fn is_tenant_id(tid: &str) -> bool {
    tid.len() == 36
        && tid.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Judges a verified ID token's tenant: with a template issuer, `iss` must
/// be the template filled with the token's `tid`, and the configured
/// segment must admit it (`common`: any; `organizations`: any but personal
/// accounts; `consumers`: only those; a tenant id: only that one).
pub fn check_tenant(
    named: &str,
    configured: &str,
    payload: &Value,
    template: bool,
) -> Result<(), OauthError> {
    if !template {
        // A single-tenant issuer was matched exactly by the library.
        return Ok(());
    }
    let bad = |why: &str| OauthError::IdToken(why.to_string());
    let tid = payload["tid"]
        .as_str()
        .filter(|t| is_tenant_id(t))
        .ok_or_else(|| bad("the ID token names no tenant"))?;
    let iss = payload["iss"].as_str().unwrap_or("");
    if iss != named.replace(PLACEHOLDER, tid) {
        return Err(bad("the ID token's issuer is not its tenant's"));
    }
    let admitted = match segment(named, configured) {
        Some("common") => true,
        Some("organizations") => tid != CONSUMERS,
        Some("consumers") => tid == CONSUMERS,
        Some(one) => one.eq_ignore_ascii_case(tid),
        None => false,
    };
    admitted
        .then_some(())
        .ok_or_else(|| bad("the ID token's tenant is not admitted by the configured issuer"))
}

/// Whether the token's `email` is the user's, proven.
pub fn email_verified(payload: &Value) -> bool {
    payload["xms_edov"] == Value::Bool(true)
        || payload["xms_edov"] == "1"
        || payload["tid"].as_str() == Some(CONSUMERS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NAMED: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";
    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    fn token(tid: &str) -> Value {
        json!({"tid": tid, "iss": NAMED.replace(PLACEHOLDER, tid)})
    }

    #[test]
    fn the_issuer_is_the_tokens_own_tenant() {
        let common = "https://login.microsoftonline.com/common/v2.0";
        assert!(template_covers(NAMED, common));
        assert!(!template_covers(NAMED, "https://evil.example/common/v2.0"));
        assert!(check_tenant(NAMED, common, &token(TENANT), true).is_ok());
        // iss of one tenant, tid of another.
        let mut forged = token(TENANT);
        forged["tid"] = json!(CONSUMERS);
        assert!(check_tenant(NAMED, common, &forged, true).is_err());
        assert!(check_tenant(NAMED, common, &json!({"iss": NAMED}), true).is_err());
        let mut literal = token(TENANT);
        literal["iss"] = json!(NAMED);
        assert!(check_tenant(NAMED, common, &literal, true).is_err());
        // The configured segment admits only its tenants.
        let orgs = "https://login.microsoftonline.com/organizations/v2.0";
        assert!(check_tenant(NAMED, orgs, &token(CONSUMERS), true).is_err());
        assert!(check_tenant(NAMED, orgs, &token(TENANT), true).is_ok());
        let consumers = "https://login.microsoftonline.com/consumers/v2.0";
        assert!(check_tenant(NAMED, consumers, &token(TENANT), true).is_err());
        let one = format!("https://login.microsoftonline.com/{TENANT}/v2.0");
        assert!(check_tenant(NAMED, &one, &token(TENANT), true).is_ok());
        assert!(check_tenant(NAMED, &one, &token(CONSUMERS), true).is_err());
        // Addresses: proven by the domain's owner, or a personal account.
        assert!(!email_verified(&token(TENANT)));
        assert!(email_verified(&json!({"tid": TENANT, "xms_edov": true})));
        assert!(email_verified(&token(CONSUMERS)));
    }
}
