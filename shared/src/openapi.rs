//! A small OpenAPI 3.1 builder: each listener lists its routes once, with a
//! summary, request body and responses, and serves the document at
//! `GET /openapi.json`.

use serde_json::{Map, Value, json};

/// `route!("post", "/path", "summary", Some((&["required"], &["optional"])), [(201, "what"), ...])`
#[macro_export]
macro_rules! route {
    ($m:literal, $p:literal, $s:literal, $body:expr, [$($code:expr),* $(,)?]) => {
        $crate::openapi::Route { method: $m, path: $p, summary: $s, body: $body, responses: &[$($code),*] }
    };
}

pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// Required body fields and optional ones, if the route takes a body.
    pub body: Option<(&'static [&'static str], &'static [&'static str])>,
    /// Status codes and what they mean.
    pub responses: &'static [(u16, &'static str)],
}

pub fn document<'a>(
    title: &str,
    description: &str,
    security: Option<&str>,
    routes: impl IntoIterator<Item = &'a Route>,
) -> Value {
    let mut paths = Map::new();
    for r in routes {
        let params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut responses = Map::new();
        for (code, what) in r.responses {
            let mut resp = json!({"description": what});
            if *code >= 400 {
                resp["content"] =
                    json!({"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}});
            } else if *code != 204 {
                resp["content"] = json!({"application/json": {"schema": {"type": "object"}}});
            }
            responses.insert(code.to_string(), resp);
        }
        let mut op = json!({"summary": r.summary, "parameters": params, "responses": responses});
        if let Some((required, optional)) = r.body {
            let props: Map<String, Value> = required
                .iter()
                .chain(optional.iter())
                .map(|f| (f.to_string(), json!({})))
                .collect();
            op["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": {"type": "object", "required": required, "properties": props}}},
            });
        }
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method] = op;
    }
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {"title": title, "version": env!("CARGO_PKG_VERSION"), "description": description},
        "paths": paths,
        "components": {"schemas": {"Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}},
        }}},
    });
    if let Some(scheme) = security {
        doc["components"]["securitySchemes"] = match scheme {
            "bearer" => json!({"operator": {"type": "http", "scheme": "bearer"}}),
            _ => {
                json!({"project_key": {"type": "apiKey", "in": "header", "name": "X-Project-Key"}})
            }
        };
    }
    doc
}
