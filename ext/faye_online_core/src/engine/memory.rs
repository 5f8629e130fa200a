//! Faye's engine for one process, in memory: which clients exist, what
//! each subscribed to, the subscribers of each channel, and when each
//! client times out. The host keeps the message queues (they hold its own
//! objects) and asks this engine, for each publication, which clients it
//! reaches: wildcards expanded as Faye expands them, each client once.
//!
//! It is called on the host's one thread and does no I/O. Timeouts cost a
//! ping one store of a number: each client has at most one entry in the
//! deadline heap, and an entry found early, when it comes up, is put back
//! at the client's current deadline.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

/// A live client.
#[derive(Debug)]
struct Client {
    /// Its id (the same allocation as its key).
    id: Arc<str>,
    /// Its subscriptions, in the order made.
    channels: Vec<Arc<str>>,
    /// When it times out (ms), if Faye has a timeout.
    deadline: Option<i64>,
    /// Whether it has an entry in the deadline heap.
    queued: bool,
}

/// The engine's state (see the module's documentation).
#[derive(Debug, Default)]
pub struct MemoryEngine {
    clients: HashMap<Arc<str>, Client>,
    channels: HashMap<Arc<str>, HashSet<Arc<str>>>,
    deadlines: BinaryHeap<Reverse<(i64, Arc<str>)>>,
}

impl MemoryEngine {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a client under `id`; false (and nothing changes) if it exists.
    pub fn create(&mut self, id: &str) -> bool {
        if self.clients.contains_key(id) {
            return false;
        }
        let id: Arc<str> = Arc::from(id);
        let client = Client {
            id: id.clone(),
            channels: Vec::new(),
            deadline: None,
            queued: false,
        };
        self.clients.insert(id, client);
        true
    }

    pub fn exists(&self, id: &str) -> bool {
        self.clients.contains_key(id)
    }

    /// How many clients exist.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// The client times out at `deadline_ms` unless pinged again. False
    /// for a client that does not exist.
    pub fn ping(&mut self, id: &str, deadline_ms: i64) -> bool {
        let Some(client) = self.clients.get_mut(id) else {
            return false;
        };
        client.deadline = Some(deadline_ms);
        if !client.queued {
            client.queued = true;
            self.deadlines
                .push(Reverse((deadline_ms, client.id.clone())));
        }
        true
    }

    /// Subscribes the client to `channel`: true if it was not subscribed
    /// (Faye then tells of it), false if it was or does not exist.
    pub fn subscribe(&mut self, id: &str, channel: &str) -> bool {
        let Some(client) = self.clients.get_mut(id) else {
            return false;
        };
        if client.channels.iter().any(|c| &**c == channel) {
            return false;
        }
        let name: Arc<str> = match self.channels.get_key_value(channel) {
            Some((name, _)) => name.clone(),
            None => Arc::from(channel),
        };
        client.channels.push(name.clone());
        self.channels
            .entry(name)
            .or_default()
            .insert(client.id.clone());
        true
    }

    /// True if the client was subscribed to `channel` (and no longer is).
    pub fn unsubscribe(&mut self, id: &str, channel: &str) -> bool {
        let Some(client) = self.clients.get_mut(id) else {
            return false;
        };
        let Some(at) = client.channels.iter().position(|c| &**c == channel) else {
            return false;
        };
        client.channels.remove(at);
        self.forget_subscriber(channel, id);
        true
    }

    fn forget_subscriber(&mut self, channel: &str, id: &str) {
        if let Some(subscribers) = self.channels.get_mut(channel) {
            subscribers.remove(id);
            if subscribers.is_empty() {
                self.channels.remove(channel);
            }
        }
    }

    /// Removes the client; the channels it was subscribed to, in order, or
    /// None if it did not exist.
    pub fn destroy(&mut self, id: &str) -> Option<Vec<Arc<str>>> {
        let client = self.clients.remove(id)?;
        for channel in &client.channels {
            self.forget_subscriber(channel, id);
        }
        Some(client.channels)
    }

    /// Calls `each` with every client a message on `channel` reaches, once
    /// each (Faye's expansion: `/**`, the name, its last segment as `*`,
    /// then `/**` under each ancestor).
    pub fn recipients(&self, channel: &str, mut each: impl FnMut(&str)) {
        if self.channels.is_empty() {
            return;
        }
        let mut matched: Vec<&HashSet<Arc<str>>> = Vec::new();
        self.expansion(channel, |name| {
            if let Some(subscribers) = self.channels.get(name) {
                matched.push(subscribers);
            }
        });
        match matched.as_slice() {
            [] => {}
            // One matching name needs no check for repeats.
            [only] => only.iter().for_each(|id| each(id)),
            _ => {
                let mut seen: HashSet<&str> = HashSet::new();
                for id in matched.iter().flat_map(|set| set.iter()) {
                    if seen.insert(id) {
                        each(id);
                    }
                }
            }
        }
    }

    /// Whether a message on `channel` would reach any client.
    pub fn has_subscribers(&self, channel: &str) -> bool {
        let mut any = false;
        self.expansion(channel, |name| {
            any = any || self.channels.contains_key(name)
        });
        any
    }

    /// Calls `f` with each name of Faye's expansion of `channel`.
    fn expansion(&self, channel: &str, mut f: impl FnMut(&str)) {
        f("/**");
        f(channel);
        let body = channel.strip_prefix('/').unwrap_or(channel);
        let mut buffer = String::with_capacity(channel.len() + 2);
        // The last segment as `*`.
        match channel.rfind('/') {
            Some(at) => {
                buffer.push_str(&channel[..=at]);
                buffer.push('*');
            }
            None => buffer.push_str("/*"),
        }
        f(&buffer);
        // `/**` under each ancestor: `/a/**`, `/a/b/**`, …
        let offset = channel.len() - body.len();
        for (at, _) in body.match_indices('/') {
            buffer.clear();
            buffer.push_str(&channel[..offset + at]);
            buffer.push_str("/**");
            f(&buffer);
        }
    }

    /// The clients whose deadline passed by `now_ms`, removed from the
    /// heap (the host destroys them, which tells of it).
    pub fn expired(&mut self, now_ms: i64) -> Vec<Arc<str>> {
        let mut out = Vec::new();
        while let Some(Reverse((at, _))) = self.deadlines.peek() {
            if *at > now_ms {
                break;
            }
            let Reverse((_, id)) = self.deadlines.pop().expect("peeked");
            let Some(client) = self.clients.get_mut(&id) else {
                continue;
            };
            match client.deadline {
                Some(deadline) if deadline > now_ms => {
                    self.deadlines.push(Reverse((deadline, id)));
                }
                Some(_) => {
                    client.queued = false;
                    out.push(id);
                }
                None => client.queued = false,
            }
        }
        out
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reached(engine: &MemoryEngine, channel: &str) -> Vec<String> {
        let mut out = Vec::new();
        engine.recipients(channel, |id| out.push(id.to_string()));
        out.sort();
        out
    }

    #[test]
    fn fans_out_to_exact_and_wildcard_subscribers_once_each() {
        let mut e = MemoryEngine::new();
        let subscriptions: &[(&str, &[&str])] = &[
            ("exact", &["/chat/a"]),
            ("star", &["/chat/*"]),
            ("deep", &["/chat/**"]),
            ("all", &["/**"]),
            ("twice", &["/chat/a", "/chat/*", "/**"]),
            ("other", &["/other"]),
            ("deeper", &["/chat/a/b"]),
            ("star_top", &["/*"]),
        ];
        for (id, channels) in subscriptions {
            assert!(e.create(id));
            for channel in *channels {
                assert!(e.subscribe(id, channel));
            }
        }
        assert_eq!(
            reached(&e, "/chat/a"),
            ["all", "deep", "exact", "star", "twice"]
        );
        assert_eq!(reached(&e, "/chat/a/b"), ["all", "deep", "deeper", "twice"]);
        assert_eq!(reached(&e, "/other"), ["all", "other", "star_top", "twice"]);
        assert_eq!(reached(&e, "/x/y/z"), ["all", "twice"]);
        assert!(e.has_subscribers("/no/body"));
        e.destroy("all");
        e.destroy("twice");
        assert!(!e.has_subscribers("/no/body"));
        assert!(e.has_subscribers("/chat/zz"));
    }

    #[test]
    fn expands_as_faye_does() {
        let e = MemoryEngine::new();
        for name in ["/a", "/a/b", "/a/b/c", "/a/b/c/d"] {
            let mut got = Vec::new();
            e.expansion(name, |n| got.push(n.to_string()));
            assert_eq!(got, crate::channel::expand(name), "{name}");
        }
    }

    #[test]
    fn subscriptions_are_told_once_and_go_with_their_client() {
        let mut e = MemoryEngine::new();
        assert!(!e.subscribe("ghost", "/a"));
        assert!(e.create("c1"));
        assert!(!e.create("c1"));
        assert!(e.subscribe("c1", "/a"));
        assert!(!e.subscribe("c1", "/a"));
        assert!(e.subscribe("c1", "/b"));
        assert!(e.unsubscribe("c1", "/a"));
        assert!(!e.unsubscribe("c1", "/a"));
        assert_eq!(reached(&e, "/a"), Vec::<String>::new());
        let gone = e.destroy("c1").unwrap();
        assert_eq!(gone.iter().map(|c| &**c).collect::<Vec<_>>(), ["/b"]);
        assert!(e.destroy("c1").is_none());
        assert!(e.channels.is_empty());
        assert!(!e.exists("c1"));
    }

    #[test]
    fn a_pinged_client_outlives_its_first_deadline_and_expires_once() {
        let mut e = MemoryEngine::new();
        e.create("alive");
        e.create("dead");
        e.create("never_pinged");
        assert!(e.ping("alive", 100));
        assert!(e.ping("dead", 100));
        assert!(!e.ping("ghost", 100));
        for t in (0..100).step_by(10) {
            e.ping("alive", t + 100);
        }
        assert_eq!(e.deadlines.len(), 2, "one heap entry per client");
        assert!(e.expired(99).is_empty());
        let out: Vec<String> = e.expired(100).iter().map(|c| c.to_string()).collect();
        assert_eq!(out, ["dead"]);
        e.destroy("dead");
        assert!(e.expired(150).is_empty());
        assert_eq!(
            e.expired(190)
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>(),
            ["alive"]
        );
        assert!(e.expired(10_000).is_empty());
        assert!(e.exists("never_pinged"));
    }
}
