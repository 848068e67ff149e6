//! Topic naming rules (Kafka's): 1 to 249 characters of `[a-zA-Z0-9._-]`,
//! and not `.` or `..`.

use crate::limits::TOPIC_NAME_CHARS_MAX;

/// Checks a topic name, saying what is wrong with it.
pub fn validate_topic(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is empty".into());
    }
    if name.len() > TOPIC_NAME_CHARS_MAX {
        return Err(format!(
            "topic name is {} characters long; the limit is {TOPIC_NAME_CHARS_MAX}",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("topic name cannot be '{name}'"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic name {name:?} has the character {c:?}; allowed are a-z A-Z 0-9 . _ -"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_names_when_validating_should_follow_kafka_rules() {
        let long = "a".repeat(250);
        let max = "a".repeat(249);
        let cases: &[(&str, bool)] = &[
            ("orders", true),
            ("a.b_c-D9", true),
            (&max, true),
            ("", false),
            (&long, false),
            ("has space", false),
            ("slash/", false),
            ("..", false),
            ("ünï", false),
        ];
        for (name, ok) in cases {
            assert_eq!(validate_topic(name).is_ok(), *ok, "{name:?}");
        }
    }
}
