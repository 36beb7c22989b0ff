//! The `filters` query parameter: a JSON object from a key to values, sent either as
//! `{"label":{"a=b":true}}` (the Go client) or `{"label":["a=b"]}` (docker-py).

use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(BTreeMap<String, Vec<String>>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("invalid filter: {0}")]
    Syntax(String),
    #[error("invalid filter '{0}'")]
    UnknownKey(String),
}

impl Filters {
    pub fn parse(raw: Option<&str>) -> Result<Filters, FilterError> {
        let Some(raw) = raw.filter(|s| !s.trim().is_empty()) else {
            return Ok(Filters::default());
        };
        let v: serde_json::Value =
            serde_json::from_str(raw).map_err(|e| FilterError::Syntax(e.to_string()))?;
        let obj = v
            .as_object()
            .ok_or_else(|| FilterError::Syntax("filters must be a JSON object".into()))?;
        let mut out = BTreeMap::new();
        for (k, vals) in obj {
            let list: Vec<String> = match vals {
                serde_json::Value::Object(m) => m
                    .iter()
                    .filter(|(_, on)| on.as_bool().unwrap_or(true))
                    .map(|(s, _)| s.clone())
                    .collect(),
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|x| match x {
                        serde_json::Value::String(s) => Ok(s.clone()),
                        other => Ok(other.to_string()),
                    })
                    .collect::<Result<_, FilterError>>()?,
                serde_json::Value::String(s) => vec![s.clone()],
                serde_json::Value::Bool(b) => vec![b.to_string()],
                other => {
                    return Err(FilterError::Syntax(format!(
                        "filter {k}: unexpected value {other}"
                    )))
                }
            };
            out.insert(k.clone(), list);
        }
        Ok(Filters(out))
    }

    /// Refuses keys outside `allowed`, as Docker does.
    pub fn validate(&self, allowed: &[&str]) -> Result<(), FilterError> {
        match self.0.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(FilterError::UnknownKey(k.clone())),
            None => Ok(()),
        }
    }

    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or_default()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.get(key).is_some_and(|v| !v.is_empty())
    }

    pub fn is_empty(&self) -> bool {
        self.0.values().all(Vec::is_empty)
    }

    /// Label filters (`k` or `k=v`), all of which must hold.
    pub fn match_labels(&self, labels: &std::collections::HashMap<String, String>) -> bool {
        self.get("label").iter().all(|f| match f.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(f.as_str()),
        })
    }

    /// True when the key is absent or any of its values satisfies `pred`.
    pub fn any_or_absent(&self, key: &str, pred: impl Fn(&str) -> bool) -> bool {
        let v = self.get(key);
        v.is_empty() || v.iter().any(|x| pred(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn both_shapes() {
        let a = Filters::parse(Some(r#"{"label":{"a=b":true},"status":{"exited":true}}"#)).unwrap();
        let b = Filters::parse(Some(r#"{"label":["a=b"],"status":["exited"]}"#)).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.get("status"), ["exited"]);
        let labels = HashMap::from([("a".to_string(), "b".to_string())]);
        assert!(a.match_labels(&labels));
        assert!(!Filters::parse(Some(r#"{"label":["a=c"]}"#))
            .unwrap()
            .match_labels(&labels));
        assert!(Filters::parse(None).unwrap().is_empty());
    }

    #[test]
    fn bad_filters() {
        assert!(Filters::parse(Some("{not json")).is_err());
        assert!(Filters::parse(Some("[1]")).is_err());
        let f = Filters::parse(Some(r#"{"colour":["red"]}"#)).unwrap();
        assert_eq!(
            f.validate(&["label"]).unwrap_err().to_string(),
            "invalid filter 'colour'"
        );
    }
}
