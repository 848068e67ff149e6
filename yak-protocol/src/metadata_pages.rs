//! Reading the whole cluster metadata from ZooKeeper page by page: one
//! metadata answer carries whole topics up to a page size, and every page
//! must come from one metadata version.

use crate::limits::METADATA_PAGE_RESTARTS_MAX;
use crate::{Call, ClientError, ClusterMetadata, Reply};

/// Reads metadata for `topics` (every topic when `None`) page by page
/// through `call` (one request to ZooKeeper) and returns it whole. Pages
/// must share one metadata version: if it moves between pages, reading
/// starts over, at most [`METADATA_PAGE_RESTARTS_MAX`] times.
pub fn read_metadata(
    topics: Option<Vec<String>>,
    mut call: impl FnMut(&Call) -> Result<Reply, ClientError>,
) -> Result<ClusterMetadata, ClientError> {
    let mut restarts = 0;
    'start: loop {
        let mut whole: Option<ClusterMetadata> = None;
        let mut after_topic = None;
        loop {
            let page = match call(&Call::Metadata {
                topics: topics.clone(),
                after_topic: after_topic.take(),
            })? {
                Reply::Metadata(m) => m,
                other => return Err(ClientError::Unexpected(format!("{other:?}"))),
            };
            let more = page.more && !page.topics.is_empty();
            after_topic = page.topics.last().map(|t| t.name.clone());
            match whole.as_mut() {
                None => whole = Some(page),
                Some(w) if w.version == page.version => w.topics.extend(page.topics),
                Some(w) => {
                    restarts += 1;
                    if restarts > METADATA_PAGE_RESTARTS_MAX {
                        return Err(ClientError::Unexpected(format!(
                            "metadata changed between pages {restarts} times (version {} then {})",
                            w.version, page.version
                        )));
                    }
                    continue 'start;
                }
            }
            if !more {
                let mut m = whole.unwrap_or_default();
                m.more = false;
                return Ok(m);
            }
        }
    }
}

#[cfg(test)]
mod paging_tests {
    use super::*;
    use crate::TopicMetadata;

    fn page(version: u64, names: &[&str], more: bool) -> Reply {
        let topics = names
            .iter()
            .map(|n| TopicMetadata {
                name: n.to_string(),
                topic_id: 1,
                partitions: Vec::new(),
                config: Default::default(),
            })
            .collect();
        Reply::Metadata(ClusterMetadata {
            version,
            topics,
            more,
            ..ClusterMetadata::default()
        })
    }

    #[test]
    fn given_pages_when_reading_metadata_should_join_them_and_start_over_when_the_version_moves() {
        let mut script = vec![
            page(1, &["a", "b"], true),
            page(2, &["c"], true),
            page(2, &["a", "b"], true),
            page(2, &["c"], true),
            page(2, &["d"], false),
        ]
        .into_iter();
        let mut asked = Vec::new();
        let m = read_metadata(None, |call| {
            if let Call::Metadata { after_topic, .. } = call {
                asked.push(after_topic.clone());
            }
            script
                .next()
                .ok_or_else(|| ClientError::Unexpected("asked too often".into()))
        })
        .expect("read");
        assert_eq!(
            m.topics.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            vec!["a", "b", "c", "d"]
        );
        assert_eq!((m.version, m.more), (2, false));
        let b = Some("b".to_string());
        assert_eq!(asked, vec![None, b.clone(), None, b, Some("c".into())]);
        let mut flapping = 0;
        let err = read_metadata(None, |_| {
            flapping += 1;
            Ok(page(flapping, &["a"], true))
        })
        .expect_err("never settles");
        assert!(err.to_string().contains("changed between pages"), "{err}");
    }
}
