//! Every JSON answer of the admin and merchant APIs the tests receive is checked against the
//! OpenAPI document (`paygate_admin::openapi::document()`): [`crate::TestApp::send`] calls
//! [`check_answer`] for requests under `/admin/v1/` and `/api/v1/`.
//!
//! Policy: an answer fails the test when its operation (method and path) is not in the document,
//! when its status is not documented for the operation (`default` is the fallback), or when its
//! JSON body does not match the documented schema. The one exception is the router's own "no
//! such route" (404 `not_found` for a path or method no operation has): it proves there is no
//! undocumented route.
//!
//! The validator knows the part of JSON Schema utoipa emits: `$ref`, `type` (one or a list),
//! `properties`, `required`, `additionalProperties`, `items`, `enum`, `const`, `nullable`,
//! `oneOf`, `anyOf` and `allOf`; other keywords (formats, bounds, descriptions) are ignored. The
//! tests validate with [`Objects::Closed`]: an object schema with `properties` and no
//! `additionalProperties` accepts only its declared properties (those of all its `allOf`
//! branches), so a field a handler sends and the document does not name is caught too.

use std::fmt;
use std::sync::OnceLock;

use serde_json::Value;

/// The document, parsed once.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(paygate_admin::openapi::document)
}

/// How objects without `additionalProperties` treat properties they do not declare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Objects {
    /// As JSON Schema says: allowed.
    Open,
    /// Refused when the schema declares `properties` (the tests' setting).
    Closed,
}

/// Where and why a value does not match its schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// JSON pointer into the value (`/data/0/livemode`; empty: the value itself).
    pub pointer: String,
    pub reason: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "at {at}: {}", self.reason)
    }
}

/// Validates `value` against `schema`, `$ref`s resolved in `doc`.
pub fn validate(
    doc: &Value,
    schema: &Value,
    value: &Value,
    objects: Objects,
) -> Result<(), Mismatch> {
    Validator { doc, objects }.check(schema, value, &mut String::new(), true)
}

struct Validator<'d> {
    doc: &'d Value,
    objects: Objects,
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_type(v: &Value, ty: &str) -> bool {
    let actual = type_of(v);
    actual == ty || (ty == "number" && actual == "integer")
}

impl<'d> Validator<'d> {
    /// The schema a chain of `$ref`s ends at.
    fn resolve(&self, schema: &'d Value) -> Result<&'d Value, String> {
        let mut s = schema;
        for _ in 0..32 {
            match s.get("$ref").and_then(Value::as_str) {
                Some(r) => {
                    let pointer = r
                        .strip_prefix('#')
                        .ok_or_else(|| format!("external $ref {r} is not supported"))?;
                    s = self
                        .doc
                        .pointer(pointer)
                        .ok_or_else(|| format!("$ref {r} names nothing in the document"))?;
                }
                None => return Ok(s),
            }
        }
        Err("$ref loop".into())
    }

    /// Every property name an object schema declares, through `allOf` and `$ref`s; `None` when
    /// one of them allows undeclared properties.
    fn declared(&self, schema: &'d Value, names: &mut Vec<String>) -> Option<()> {
        let s = self.resolve(schema).ok()?;
        if s.get("additionalProperties")
            .is_some_and(|a| a != &Value::Bool(false))
        {
            return None;
        }
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            names.extend(props.keys().cloned());
        }
        for branch in s
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.declared(branch, names)?;
        }
        Some(())
    }

    fn mismatch(&self, pointer: &str, reason: impl Into<String>) -> Mismatch {
        Mismatch {
            pointer: pointer.to_owned(),
            reason: reason.into(),
        }
    }

    /// `closed`: whether this schema, not an enclosing `allOf`, decides on undeclared
    /// properties.
    fn check(
        &self,
        schema: &Value,
        value: &Value,
        pointer: &mut String,
        closed: bool,
    ) -> Result<(), Mismatch> {
        let schema = match schema.get("$ref") {
            Some(_) => self
                .resolve_any(schema)
                .map_err(|e| self.mismatch(pointer, e))?,
            None => schema,
        };
        if schema.get("nullable") == Some(&Value::Bool(true)) && value.is_null() {
            return Ok(());
        }
        if let Some(ty) = schema.get("type") {
            let ok = match ty {
                Value::String(t) => is_type(value, t),
                Value::Array(ts) => ts
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|t| is_type(value, t)),
                _ => true,
            };
            if !ok {
                return Err(self.mismatch(
                    pointer,
                    format!("expected type {ty}, found {} {value}", type_of(value)),
                ));
            }
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array)
            && !values.contains(value)
        {
            return Err(self.mismatch(
                pointer,
                format!("{value} is not one of {}", Value::Array(values.clone())),
            ));
        }
        if let Some(c) = schema.get("const")
            && c != value
        {
            return Err(self.mismatch(pointer, format!("{value} is not {c}")));
        }
        if let Some(branches) = schema.get("allOf").and_then(Value::as_array) {
            for b in branches {
                self.check(b, value, pointer, false)?;
            }
        }
        if let Some(branches) = schema.get("anyOf").and_then(Value::as_array) {
            let mut errors = Vec::new();
            for b in branches {
                match self.check(b, value, pointer, true) {
                    Ok(()) => {
                        errors.clear();
                        break;
                    }
                    Err(e) => errors.push(e.to_string()),
                }
            }
            if !errors.is_empty() {
                return Err(self.mismatch(
                    pointer,
                    format!("matches no anyOf branch ({})", errors.join("; ")),
                ));
            }
        }
        if let Some(branches) = schema.get("oneOf").and_then(Value::as_array) {
            let mut errors = Vec::new();
            let mut matched = 0;
            for b in branches {
                match self.check(b, value, pointer, true) {
                    Ok(()) => matched += 1,
                    Err(e) => errors.push(e.to_string()),
                }
            }
            if matched != 1 {
                return Err(self.mismatch(
                    pointer,
                    if matched == 0 {
                        format!("matches no oneOf branch ({})", errors.join("; "))
                    } else {
                        format!("matches {matched} oneOf branches, not exactly one")
                    },
                ));
            }
        }
        match value {
            Value::Object(o) => self.check_object(schema, o, pointer, closed),
            Value::Array(a) => {
                if let Some(items) = schema.get("items") {
                    for (i, v) in a.iter().enumerate() {
                        let len = pointer.len();
                        pointer.push_str(&format!("/{i}"));
                        self.check(items, v, pointer, true)?;
                        pointer.truncate(len);
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The schema the `$ref` of `schema` names (wherever `schema` lives).
    fn resolve_any(&self, schema: &Value) -> Result<&'d Value, String> {
        let r = schema
            .get("$ref")
            .and_then(Value::as_str)
            .ok_or_else(|| "$ref is not a string".to_owned())?;
        let pointer = r
            .strip_prefix('#')
            .ok_or_else(|| format!("external $ref {r} is not supported"))?;
        let target = self
            .doc
            .pointer(pointer)
            .ok_or_else(|| format!("$ref {r} names nothing in the document"))?;
        self.resolve(target)
    }

    fn check_object(
        &self,
        schema: &Value,
        o: &serde_json::Map<String, Value>,
        pointer: &mut String,
        closed: bool,
    ) -> Result<(), Mismatch> {
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !o.contains_key(name) {
                return Err(self.mismatch(pointer, format!("required field {name:?} is missing")));
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        for (k, v) in o {
            let len = pointer.len();
            pointer.push('/');
            pointer.push_str(&escape(k));
            let result = match (
                props.and_then(|p| p.get(k)),
                schema.get("additionalProperties"),
            ) {
                (Some(s), _) => self.check(s, v, pointer, true),
                (None, Some(Value::Bool(false))) => Err(self.mismatch(
                    pointer,
                    format!("field {k:?} is not allowed (additionalProperties: false)"),
                )),
                (None, Some(extra @ Value::Object(_))) => self.check(extra, v, pointer, true),
                (None, _) => Ok(()),
            };
            result?;
            pointer.truncate(len);
        }
        let has_own = props.is_some() || schema.get("allOf").is_some();
        if self.objects == Objects::Closed && closed && has_own {
            let mut names = Vec::new();
            if self.declared_inline(schema, &mut names).is_some()
                && let Some(k) = o.keys().find(|k| !names.contains(k))
            {
                return Err(self.mismatch(
                    &format!("{pointer}/{}", escape(k)),
                    format!("field {k:?} is not in the document"),
                ));
            }
        }
        Ok(())
    }

    fn declared_inline(&self, schema: &Value, names: &mut Vec<String>) -> Option<()> {
        if schema
            .get("additionalProperties")
            .is_some_and(|a| a != &Value::Bool(false))
        {
            return None;
        }
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            names.extend(props.keys().cloned());
        }
        for branch in schema
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match branch.get("$ref") {
                Some(_) => self.declared(self.resolve_any(branch).ok()?, names)?,
                None => self.declared_inline(branch, names)?,
            }
        }
        Some(())
    }
}

/// The operation of `method` and `path` (no query string): its path template and object. A
/// template with more literal segments wins (`…/events/stats` over `…/events/{event_id}`).
pub fn operation<'d>(doc: &'d Value, method: &str, path: &str) -> Option<(&'d str, &'d Value)> {
    let segments: Vec<&str> = path.split('/').collect();
    let method = method.to_ascii_lowercase();
    doc["paths"]
        .as_object()?
        .iter()
        .filter_map(|(template, item)| {
            let parts: Vec<&str> = template.split('/').collect();
            if parts.len() != segments.len() {
                return None;
            }
            let mut literal = 0;
            for (t, s) in parts.iter().zip(&segments) {
                if t.starts_with('{') && t.ends_with('}') {
                    if s.is_empty() {
                        return None;
                    }
                } else if t == s {
                    literal += 1;
                } else {
                    return None;
                }
            }
            let op = item.get(&method)?;
            Some((literal, template.as_str(), op))
        })
        .max_by_key(|(literal, ..)| *literal)
        .map(|(_, template, op)| (template, op))
}

/// The documented response of `op` for `status`: the exact code, then `4XX`-style ranges, then
/// `default`.
pub fn response(op: &Value, status: u16) -> Option<&Value> {
    let responses = op.get("responses")?;
    responses
        .get(status.to_string())
        .or_else(|| responses.get(format!("{}XX", status / 100)))
        .or_else(|| responses.get("default"))
}

/// Checks one answer: `body` is `Some` when it is JSON. The error says what is wrong.
pub fn check_answer(
    doc: &Value,
    method: &str,
    path: &str,
    status: u16,
    body: Option<&Value>,
) -> Result<(), String> {
    let Some((template, op)) = operation(doc, method, path) else {
        let router_404 = status == 404 && body.is_some_and(|b| b["error"]["code"] == "not_found");
        return if router_404 {
            Ok(())
        } else {
            Err("the operation is not in the OpenAPI document".into())
        };
    };
    let op_name = format!("{} {template}", method.to_ascii_uppercase());
    let Some(resp) = response(op, status) else {
        let documented: Vec<&String> = op["responses"]
            .as_object()
            .map(|r| r.keys().collect())
            .unwrap_or_default();
        return Err(format!(
            "status {status} is not documented for {op_name} (documented: {documented:?})"
        ));
    };
    let Some(body) = body else {
        return Ok(());
    };
    let Some(schema) = resp.pointer("/content/application~1json/schema") else {
        return Err(format!(
            "{op_name} documents {status} without a JSON body, but one came"
        ));
    };
    validate(doc, schema, body, Objects::Closed)
        .map_err(|m| format!("the body does not match {op_name} {status}: {m}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc() -> Value {
        json!({
            "paths": {
                "/things/{id}": {"get": {"responses": {
                    "200": {"description": "", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}},
                    "404": {"description": "", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                    "204": {"description": ""},
                }}},
                "/things/special": {"get": {"responses": {"default": {"description": "", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            },
            "components": {"schemas": {
                "Mode": {"type": "string", "enum": ["test", "live"]},
                "Thing": {
                    "type": "object",
                    "required": ["id", "livemode", "tags", "mode", "note"],
                    "properties": {
                        "id": {"type": "string"},
                        "livemode": {"type": "boolean"},
                        "count": {"type": ["integer", "null"]},
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "mode": {"$ref": "#/components/schemas/Mode"},
                        "note": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Note"}]},
                        "meta": {"type": "object"},
                    },
                },
                "Note": {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}},
                "Strict": {"type": "object", "additionalProperties": false, "properties": {"a": {"type": "integer"}}},
                "Detail": {"allOf": [
                    {"$ref": "#/components/schemas/Note"},
                    {"type": "object", "properties": {"extra": {"type": "number"}}},
                ]},
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code"], "properties": {"code": {"type": "string"}},
                }}},
                "Old": {"type": "string", "nullable": true},
                "Counts": {"type": "object", "properties": {"total": {"type": "integer"}}, "additionalProperties": {"type": "integer"}},
            }},
        })
    }

    fn thing() -> Value {
        json!({"id": "t_1", "livemode": false, "count": null, "tags": ["a"], "mode": "test",
               "note": {"text": "hi"}, "meta": {"anything": [1, 2]}})
    }

    fn check(schema: &str, v: &Value, objects: Objects) -> Result<(), Mismatch> {
        let d = doc();
        validate(
            &d,
            &json!({"$ref": format!("#/components/schemas/{schema}")}),
            v,
            objects,
        )
    }

    #[test]
    fn a_matching_body_passes() {
        check("Thing", &thing(), Objects::Closed).unwrap();
        let mut t = thing();
        t["note"] = Value::Null;
        t["count"] = json!(3);
        check("Thing", &t, Objects::Closed).unwrap();
        check("Old", &Value::Null, Objects::Closed).unwrap();
        check(
            "Counts",
            &json!({"total": 1, "pending": 1}),
            Objects::Closed,
        )
        .unwrap();
        check(
            "Detail",
            &json!({"text": "x", "extra": 1.5}),
            Objects::Closed,
        )
        .unwrap();
    }

    #[test]
    fn a_missing_required_field_fails() {
        let mut t = thing();
        t.as_object_mut().unwrap().remove("livemode");
        let m = check("Thing", &t, Objects::Open).unwrap_err();
        assert_eq!(m.pointer, "");
        assert!(m.reason.contains("\"livemode\""), "{m}");
        let mut t = thing();
        t["note"] = json!({});
        let m = check("Thing", &t, Objects::Open).unwrap_err();
        assert_eq!(m.pointer, "/note");
    }

    #[test]
    fn a_wrong_type_fails() {
        let mut t = thing();
        t["livemode"] = json!("false");
        assert_eq!(
            check("Thing", &t, Objects::Open).unwrap_err().pointer,
            "/livemode"
        );
        let mut t = thing();
        t["tags"] = json!(["a", 2]);
        assert_eq!(
            check("Thing", &t, Objects::Open).unwrap_err().pointer,
            "/tags/1"
        );
        let mut t = thing();
        t["count"] = json!(1.5);
        assert_eq!(
            check("Thing", &t, Objects::Open).unwrap_err().pointer,
            "/count"
        );
        let mut t = thing();
        t["mode"] = json!("prod");
        assert_eq!(
            check("Thing", &t, Objects::Open).unwrap_err().pointer,
            "/mode"
        );
        assert!(
            check(
                "Counts",
                &json!({"total": 1, "pending": "x"}),
                Objects::Open
            )
            .is_err()
        );
    }

    #[test]
    fn an_extra_field_fails_under_additional_properties_false() {
        let m = check("Strict", &json!({"a": 1, "b": 2}), Objects::Open).unwrap_err();
        assert_eq!(m.pointer, "/b");
        // Open objects allow it; closed ones (the tests' setting) do not.
        let mut t = thing();
        t["surprise"] = json!(true);
        check("Thing", &t, Objects::Open).unwrap();
        let m = check("Thing", &t, Objects::Closed).unwrap_err();
        assert_eq!(m.pointer, "/surprise");
        // Free-form objects stay free-form, and allOf branches pool their properties.
        check("Detail", &json!({"text": "x", "extra": 1}), Objects::Closed).unwrap();
        assert!(check("Detail", &json!({"text": "x", "other": 1}), Objects::Closed).is_err());
    }

    #[test]
    fn answers_are_matched_to_operations_and_statuses() {
        let d = doc();
        check_answer(&d, "GET", "/things/t_1", 200, Some(&thing())).unwrap();
        check_answer(&d, "GET", "/things/t_1", 204, None).unwrap();
        // The literal template wins over the parameter.
        check_answer(&d, "GET", "/things/special", 418, Some(&json!({}))).unwrap();
        let e = check_answer(&d, "GET", "/things/t_1", 409, Some(&json!({}))).unwrap_err();
        assert!(e.contains("status 409 is not documented"), "{e}");
        let e = check_answer(&d, "POST", "/things/t_1", 201, Some(&json!({}))).unwrap_err();
        assert!(e.contains("not in the OpenAPI document"), "{e}");
        let e = check_answer(&d, "GET", "/things/t_1", 204, Some(&json!({}))).unwrap_err();
        assert!(e.contains("without a JSON body"), "{e}");
        // The router's own 404 for a route that does not exist.
        check_answer(
            &d,
            "GET",
            "/nothing",
            404,
            Some(&json!({"error": {"code": "not_found"}})),
        )
        .unwrap();
    }

    #[test]
    fn the_generated_document_is_usable() {
        let d = document();
        let (template, _) = operation(d, "GET", "/admin/v1/companies/c_1/events/stats").unwrap();
        assert_eq!(template, "/admin/v1/companies/{company_id}/events/stats");
        let err = json!({"error": {"code": "company_not_found", "message": "no such company"}});
        check_answer(
            d,
            "GET",
            "/admin/v1/companies/c_1/events/stats",
            404,
            Some(&err),
        )
        .unwrap();
        let err = json!({"error": {"code": "x", "message": "y", "field": "name", "more": 1}});
        assert!(check_answer(d, "POST", "/admin/v1/companies", 422, Some(&err)).is_err());
    }
}
