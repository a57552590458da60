//! `autofw allow|block|limit|source|forget`: one change to the policy
//! file's text, made in place as `cargo add` edits `Cargo.toml`. The
//! operator's comments, order and spacing stay byte for byte (toml_edit
//! keeps every byte it does not change); only the entries the command names
//! are added or removed. The result is checked with the same parser
//! `propose` uses before anyone writes it. Pure: `policy_write` reads and
//! writes the file.

use super::policy_file::parse_policy;
use super::rate::Rate;
use super::spec::{Spec, parse_net, split_specs};
use crate::error::bad_input;
use crate::services::ServiceTable;
use toml_edit::{Array, DocumentMut, Item, Table, Value};

/// The first lines of a policy file that an edit creates.
pub(crate) const HEADER: &str = "\
# autofw policy: what to open and keep closed beyond what `autofw scan` finds.
# Format: /usr/share/doc/autofw/policy.md. `autofw allow|block|limit|source|forget`
# edit this file and keep your comments; edit it by hand as well.
";

/// One edit, as the operator typed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// `autofw allow SPEC...`: add to `allow` (and take off `block`).
    Allow(Vec<String>),
    /// `autofw block SPEC...`: add to `block` (and take off `allow`).
    Block(Vec<String>),
    /// `autofw limit SPEC[=RATE]`: `[service.SPEC] limit`.
    Limit(String),
    /// `autofw source SPEC=NET[,NET]`: add to `[service.SPEC] sources`.
    Source(String),
    /// `autofw forget SPEC` (everything the file says of it), or
    /// `SPEC=NET[,NET]` (those networks from its `sources`).
    Forget(String),
}

impl Edit {
    /// The command as the operator would type it again: `allow https`.
    pub fn command(&self) -> String {
        match self {
            Edit::Allow(specs) => format!("allow {}", specs.join(" ")),
            Edit::Block(specs) => format!("block {}", specs.join(" ")),
            Edit::Limit(text) => format!("limit {text}"),
            Edit::Source(text) => format!("source {text}"),
            Edit::Forget(text) => format!("forget {text}"),
        }
    }
}

/// The file after an edit, and what changed in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Edited {
    pub text: String,
    /// One line per change (`allow https`, `take 8443/tcp off block`).
    pub changes: Vec<String>,
    /// What was asked but already so (`https is already allowed`).
    pub unchanged: Vec<String>,
}

impl Edited {
    pub(crate) fn changed(&self, old: &str) -> bool {
        self.text != old
    }
}

/// Apply `edit` to the text of a policy file (`""` for a file that does not
/// exist yet: it gets [`HEADER`]). `origin` names the file in errors. The
/// result parses as a policy, or this is an error and nothing is to be
/// written.
pub(crate) fn edit(
    old: &str,
    origin: &str,
    edit: &Edit,
    table: &ServiceTable,
) -> anyhow::Result<Edited> {
    let base = if old.trim().is_empty() { HEADER } else { old };
    let mut doc: DocumentMut = base.parse().map_err(|e: toml_edit::TomlError| {
        bad_input(format!(
            "policy file {origin} is not valid TOML, so it cannot be edited: {}; fix it by hand \
             (it is unchanged)",
            e.to_string().trim_end()
        ))
    })?;
    // A file of comments only (a new one's header): toml_edit keeps them as
    // the text after the last item, so they are set aside and put back on
    // top, a blank line before what the edit adds.
    let mut leading = String::new();
    if doc.iter().next().is_none() {
        leading = doc.trailing().as_str().unwrap_or("").to_string();
        doc.set_trailing("");
    }
    let mut out = Edited {
        text: String::new(),
        changes: Vec::new(),
        unchanged: Vec::new(),
    };
    let mut editor = Editor {
        doc: &mut doc,
        origin,
        table,
        out: &mut out,
    };
    match edit {
        Edit::Allow(specs) => editor.list_add("allow", "block", specs, "allowed")?,
        Edit::Block(specs) => editor.list_add("block", "allow", specs, "blocked")?,
        Edit::Limit(text) => editor.limit(text)?,
        Edit::Source(text) => editor.source(text)?,
        Edit::Forget(text) => editor.forget(text)?,
    }
    out.text = if out.changes.is_empty() {
        old.to_string()
    } else if leading.is_empty() {
        doc.to_string()
    } else {
        let body = doc.to_string();
        let body = body.trim_start_matches('\n');
        let gap = if leading.ends_with("\n\n") { "" } else { "\n" };
        format!("{leading}{gap}{body}")
    };
    if out.changes.is_empty() {
        return Ok(out);
    }
    parse_policy(&out.text, origin, table).map_err(|e| {
        bad_input(format!(
            "`autofw {}` would leave {origin} an invalid policy ({e:#}); it is unchanged",
            edit.command()
        ))
    })?;
    Ok(out)
}

struct Editor<'a> {
    doc: &'a mut DocumentMut,
    origin: &'a str,
    table: &'a ServiceTable,
    out: &'a mut Edited,
}

impl Editor<'_> {
    /// `SPEC=NET[,NET]` of `source` and `forget`: the spec as written and
    /// parsed, and the networks parsed, in that order (a bad spec is the
    /// one named when both are bad).
    fn spec_and_networks<'t>(
        &self,
        text: &'t str,
        command: &str,
    ) -> anyhow::Result<(&'t str, Spec, Vec<String>)> {
        let (spec_text, nets) = spec_and_nets(text, command)?;
        let spec = self.spec(spec_text)?;
        let nets = nets
            .iter()
            .map(|n| {
                parse_net(n)
                    .map(|net| net.to_string())
                    .map_err(|e| bad_input(format!("`{text}`: {e}")))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok((spec_text, spec, nets))
    }

    fn spec(&self, text: &str) -> anyhow::Result<Spec> {
        Spec::parse(text, self.table).map_err(|e| bad_input(format!("`{text}`: {e}")))
    }

    /// `allow`/`block`: add each spec to `key`, take it off `other`.
    fn list_add(
        &mut self,
        key: &str,
        other: &str,
        specs: &[String],
        already: &str,
    ) -> anyhow::Result<()> {
        let specs = split_specs(specs);
        if specs.is_empty() {
            return Err(bad_input(format!(
                "`autofw {key}` needs at least one SPEC: a name (`https`) or `PORT[/tcp|udp]`"
            )));
        }
        // Every spec is checked before anything changes.
        let parsed = specs
            .iter()
            .map(|s| self.spec(s).map(|p| (s.clone(), p)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        for (text, spec) in parsed {
            if self.remove_from_list(other, &spec)? {
                self.out.changes.push(format!("take {text} off `{other}`"));
            }
            if self.list_has(key, &spec)? {
                self.out
                    .unchanged
                    .push(format!("{text} is already {already}"));
                continue;
            }
            self.push_to_list(key, &spec.to_string())?;
            self.out.changes.push(format!("{key} {text}"));
        }
        Ok(())
    }

    /// The top-level string list `key`, if present. Anything but a list
    /// there is the operator's to fix.
    fn list_mut(&mut self, key: &str) -> anyhow::Result<Option<&mut Array>> {
        let origin = self.origin.to_string();
        match self.doc.get_mut(key) {
            None => Ok(None),
            Some(item) => match item.as_array_mut() {
                Some(array) => Ok(Some(array)),
                None => Err(bad_input(format!(
                    "{origin}: `{key}` is not a list of strings, so it cannot be edited; fix it \
                     by hand (the file is unchanged)"
                ))),
            },
        }
    }

    fn list_has(&mut self, key: &str, spec: &Spec) -> anyhow::Result<bool> {
        let table = self.table;
        Ok(self
            .list_mut(key)?
            .is_some_and(|array| array.iter().any(|v| same_spec(v, spec, table))))
    }

    /// Remove every entry naming `spec` from the list `key`.
    fn remove_from_list(&mut self, key: &str, spec: &Spec) -> anyhow::Result<bool> {
        let table = self.table;
        let Some(array) = self.list_mut(key)? else {
            return Ok(false);
        };
        Ok(remove_matching(array, |v| same_spec(v, spec, table)))
    }

    /// Append `text` to the list `key`, made (after the other top-level
    /// keys) when missing.
    fn push_to_list(&mut self, key: &str, text: &str) -> anyhow::Result<()> {
        if let Some(array) = self.list_mut(key)? {
            push_like(array, text);
            return Ok(());
        }
        let mut array = Array::new();
        array.push(text);
        insert_top_level(self.doc, key, Item::Value(Value::Array(array)));
        Ok(())
    }

    /// The `[service.*]` key that names `spec`, if any.
    fn service_key(&self, spec: &Spec) -> Option<String> {
        let services = self.doc.get("service")?.as_table_like()?;
        services
            .iter()
            .map(|(k, _)| k)
            .find(|k| Spec::parse(k, self.table).is_ok_and(|s| &s == spec))
            .map(str::to_string)
    }

    /// The section of `spec`, made (as `[service.SPEC]`, at the end) when
    /// missing.
    fn service_section(&mut self, spec: &Spec) -> anyhow::Result<&mut dyn toml_edit::TableLike> {
        let origin = self.origin.to_string();
        let key = match self.service_key(spec) {
            Some(key) => key,
            None => {
                let services = self.doc.entry("service").or_insert_with(|| {
                    let mut t = Table::new();
                    t.set_implicit(true);
                    Item::Table(t)
                });
                let Some(services) = services.as_table_like_mut() else {
                    return Err(not_a_table(&origin, "service"));
                };
                let mut section = Table::new();
                // A blank line before the new header, as people write them.
                section.decor_mut().set_prefix("\n");
                services.insert(&spec.to_string(), Item::Table(section));
                spec.to_string()
            }
        };
        self.doc
            .get_mut("service")
            .and_then(Item::as_table_like_mut)
            .and_then(|s| s.get_mut(&key))
            .and_then(Item::as_table_like_mut)
            .ok_or_else(|| not_a_table(&origin, &format!("service.{key}")))
    }

    fn limit(&mut self, text: &str) -> anyhow::Result<()> {
        let (spec_text, rate) = match text.split_once('=') {
            Some((spec, rate)) => (spec.trim(), Some(rate.trim())),
            None => (text.trim(), None),
        };
        let spec = self.spec(spec_text)?;
        let value = match rate {
            None => Value::from(true),
            Some(rate) => {
                Rate::parse(rate, Rate::UFW_LIKE.burst)
                    .map_err(|e| bad_input(format!("`{text}`: {e}")))?;
                Value::from(rate)
            }
        };
        let shown = value.to_string().trim().to_string();
        let section = self.service_section(&spec)?;
        let same = section
            .get("limit")
            .and_then(Item::as_value)
            .is_some_and(|v| v.to_string().trim() == shown);
        if same {
            self.out
                .unchanged
                .push(format!("{spec_text} already has limit = {shown}"));
            return Ok(());
        }
        match section.get_mut("limit").and_then(Item::as_value_mut) {
            // Replace the value, keep its decor (a comment after it stays).
            Some(old) => {
                let decor = old.decor().clone();
                *old = value;
                *old.decor_mut() = decor;
            }
            None => {
                section.insert("limit", Item::Value(value));
            }
        }
        self.out
            .changes
            .push(format!("[service.{spec}] limit = {shown}"));
        Ok(())
    }

    fn source(&mut self, text: &str) -> anyhow::Result<()> {
        let (spec_text, spec, nets) = self.spec_and_networks(text, "source")?;
        let origin = self.origin.to_string();
        let section = self.service_section(&spec)?;
        if !section.contains_key("sources") {
            section.insert("sources", Item::Value(Value::Array(Array::new())));
        }
        let Some(array) = section.get_mut("sources").and_then(Item::as_array_mut) else {
            return Err(bad_input(format!(
                "{origin}: `[service.{spec}] sources` is not a list, so it cannot be edited; \
                 fix it by hand (the file is unchanged)"
            )));
        };
        let (mut changes, mut unchanged) = (Vec::new(), Vec::new());
        for net in nets {
            if array.iter().any(|v| same_net(v, &net)) {
                unchanged.push(format!("{net} is already a source of {spec_text}"));
                continue;
            }
            push_like(array, &net);
            changes.push(format!("[service.{spec}] sources += {net}"));
        }
        self.out.changes.extend(changes);
        self.out.unchanged.extend(unchanged);
        Ok(())
    }

    fn forget(&mut self, text: &str) -> anyhow::Result<()> {
        if text.contains('=') {
            return self.forget_sources(text);
        }
        let spec = self.spec(text.trim())?;
        for key in ["allow", "block"] {
            if self.remove_from_list(key, &spec)? {
                self.out.changes.push(format!("take {text} off `{key}`"));
            }
        }
        if let Some(key) = self.service_key(&spec)
            && let Some(services) = self
                .doc
                .get_mut("service")
                .and_then(Item::as_table_like_mut)
        {
            services.remove(&key);
            self.out.changes.push(format!("remove [service.{spec}]"));
            if services.is_empty() {
                self.doc.remove("service");
            }
        }
        if self.out.changes.is_empty() {
            return Err(bad_input(format!(
                "nothing to forget: {} says nothing of `{text}` (not in `allow`, `block` nor \
                 a `[service]` section); it is unchanged",
                self.origin
            )));
        }
        Ok(())
    }

    /// `forget SPEC=NET[,NET]`: those networks off the spec's `sources`.
    fn forget_sources(&mut self, text: &str) -> anyhow::Result<()> {
        let (spec_text, spec, nets) = self.spec_and_networks(text, "forget")?;
        let origin = self.origin.to_string();
        let array = self
            .service_key(&spec)
            .and_then(|key| {
                self.doc
                    .get_mut("service")?
                    .as_table_like_mut()?
                    .get_mut(&key)?
                    .as_table_like_mut()?
                    .get_mut("sources")?
                    .as_array_mut()
            })
            .ok_or_else(|| {
                bad_input(format!(
                    "nothing to forget: {origin} lists no sources for `{spec_text}`; it is unchanged"
                ))
            })?;
        for net in &nets {
            if remove_matching(array, |v| same_net(v, net)) {
                self.out
                    .changes
                    .push(format!("[service.{spec}] sources -= {net}"));
            } else {
                self.out
                    .unchanged
                    .push(format!("{net} is not a source of {spec_text}"));
            }
        }
        if array.is_empty() && !self.out.changes.is_empty() {
            // An empty list would admit no one (the parser refuses it), and
            // dropping the key would admit everyone: the operator says which.
            return Err(bad_input(format!(
                "`autofw forget {text}` would leave `{spec_text}` with no sources; `autofw forget \
                 {spec_text}` removes the restriction (and its section), `autofw block \
                 {spec_text}` closes it; {origin} is unchanged"
            )));
        }
        Ok(())
    }
}

/// `SPEC=NET[,NET]` split, for `source` and `forget`.
fn spec_and_nets<'t>(text: &'t str, command: &str) -> anyhow::Result<(&'t str, Vec<&'t str>)> {
    let (spec, nets) = text.split_once('=').ok_or_else(|| {
        bad_input(format!(
            "`autofw {command} {text}`: expected SPEC=NET[,NET...], e.g. `ssh=192.0.2.0/24`"
        ))
    })?;
    let nets: Vec<&str> = nets
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    if nets.is_empty() {
        return Err(bad_input(format!(
            "`autofw {command} {text}`: no network after `=`; e.g. `ssh=192.0.2.0/24`"
        )));
    }
    Ok((spec.trim(), nets))
}

fn not_a_table(origin: &str, key: &str) -> anyhow::Error {
    bad_input(format!(
        "{origin}: `{key}` is not a table, so it cannot be edited; fix it by hand (the file is \
         unchanged)"
    ))
}

fn same_spec(value: &Value, spec: &Spec, table: &ServiceTable) -> bool {
    value
        .as_str()
        .is_some_and(|s| Spec::parse(s, table).is_ok_and(|s| &s == spec))
}

fn same_net(value: &Value, net: &str) -> bool {
    value
        .as_str()
        .is_some_and(|s| parse_net(s).is_ok_and(|n| n.to_string() == net))
}

/// Insert a new top-level key after the existing ones (toml_edit writes
/// a table's plain keys before its sub-tables).
fn insert_top_level(doc: &mut DocumentMut, key: &str, item: Item) {
    doc.insert(key, item);
}

/// Append `text` to `array` looking like the entries already there: on its
/// own line, indented as they are, in a list written one entry a line; after
/// `, ` in a list on one line. A comment after the last entry stays on that
/// entry's line.
fn push_like(array: &mut Array, text: &str) {
    let mut value = Value::from(text);
    let prefix_of = |v: &Value| {
        v.decor()
            .prefix()
            .and_then(|p| p.as_str())
            .unwrap_or("")
            .to_string()
    };
    let trailing = array.trailing().as_str().unwrap_or("").to_string();
    let last_prefix = array.iter().last().map(prefix_of);
    match last_prefix {
        None => value.decor_mut().set_prefix(""),
        Some(last) if last.contains('\n') || trailing.contains('\n') => {
            // One entry a line: the indentation of the last entry.
            let indent = last.rsplit('\n').next().unwrap_or("").to_string();
            let indent = if last.contains('\n') {
                indent
            } else {
                "  ".to_string()
            };
            let (before, after) = trailing.rsplit_once('\n').unwrap_or(("", &trailing));
            value.decor_mut().set_prefix(format!("{before}\n{indent}"));
            array.set_trailing(format!("\n{after}"));
        }
        Some(_) => value.decor_mut().set_prefix(" "),
    }
    value.decor_mut().set_suffix("");
    array.push_formatted(value);
}

/// Remove the entries `matches` picks; true if any. In a list written one
/// entry a line, a comment on the removed entry's line goes with it, and
/// the one on the line before stays there.
fn remove_matching(array: &mut Array, matches: impl Fn(&Value) -> bool) -> bool {
    let mut removed = false;
    let mut i = 0;
    while i < array.len() {
        let Some(value) = array.get(i) else { break };
        if !matches(value) {
            i += 1;
            continue;
        }
        let gone = array.remove(i);
        removed = true;
        let gone_prefix = raw(gone.decor().prefix());
        // What follows the entry before, on its line (its comment).
        let (before_on_its_line, _) = split_first_line(&gone_prefix);
        match array.get_mut(i) {
            Some(next) => {
                let prefix = raw(next.decor().prefix());
                let prefix = match split_first_line(&prefix) {
                    (_, Some(rest)) => format!("{before_on_its_line}{rest}"),
                    // A list on one line: the first entry has no space before it.
                    (_, None) if i == 0 => gone_prefix,
                    (_, None) => prefix,
                };
                next.decor_mut().set_prefix(prefix);
            }
            None => {
                let trailing = raw(Some(array.trailing()));
                if let (_, Some(rest)) = split_first_line(&trailing) {
                    array.set_trailing(format!("{before_on_its_line}{rest}"));
                }
                if array.is_empty() {
                    array.set_trailing_comma(false);
                    if !array.trailing().as_str().unwrap_or("").contains('#') {
                        array.set_trailing("");
                    }
                }
            }
        }
    }
    removed
}

fn raw(text: Option<&toml_edit::RawString>) -> String {
    text.and_then(|t| t.as_str()).unwrap_or("").to_string()
}

/// `" # web\n  "` → `(" # web", Some("\n  "))`: what is left of a line,
/// and the rest from its newline on.
fn split_first_line(text: &str) -> (&str, Option<&str>) {
    match text.find('\n') {
        Some(at) => (&text[..at], Some(&text[at..])),
        None => (text, None),
    }
}

/// The rule lines `after` adds to `before` and removes from it, both nft
/// texts of a proposal: what an edit would change in the firewall. Comments
/// (the header's "Left closed" list), blank lines and braces are left out.
pub(crate) fn rule_changes(before: &str, after: &str) -> (Vec<String>, Vec<String>) {
    let (mut added, mut removed) = (Vec::new(), Vec::new());
    for change in similar::TextDiff::from_lines(before, after).iter_all_changes() {
        let line = change.value().trim();
        if line.is_empty() || line.starts_with('#') || line == "}" || line.ends_with('{') {
            continue;
        }
        match change.tag() {
            similar::ChangeTag::Insert => added.push(line.to_string()),
            similar::ChangeTag::Delete => removed.push(line.to_string()),
            similar::ChangeTag::Equal => {}
        }
    }
    (added, removed)
}

/// An order-dependent fingerprint of a file's bytes (FNV-1a, 64 bits, as
/// the blocklist digests): enough for apply's record and status to tell
/// whether the policy changed since, not a security measure.
pub(crate) fn text_digest(bytes: &[u8]) -> String {
    use std::hash::Hasher;
    let mut h = fnv::FnvHasher::default();
    h.write(bytes);
    format!("{:016x}", h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> ServiceTable {
        ServiceTable::builtin()
    }

    fn run(old: &str, e: Edit) -> Edited {
        edit(old, "p.toml", &e, &table()).unwrap_or_else(|e| panic!("{e:#}"))
    }

    fn err(old: &str, e: Edit) -> String {
        format!("{:#}", edit(old, "p.toml", &e, &table()).unwrap_err())
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    const ADMIN: &str = include_str!("../../fixtures/policies/admin.toml");
    const HAND: &str = include_str!("../../fixtures/policies/hand-written.toml");

    /// The lines an edit took out of `old` and put into `new`: everything
    /// else is the same, byte for byte, in the same order.
    fn lines_changed(old: &str, new: &str) -> (Vec<String>, Vec<String>) {
        let (mut gone, mut added) = (Vec::new(), Vec::new());
        for change in similar::TextDiff::from_lines(old, new).iter_all_changes() {
            let line = change.value().trim_end_matches('\n').to_string();
            match change.tag() {
                similar::ChangeTag::Delete => gone.push(line),
                similar::ChangeTag::Insert => added.push(line),
                similar::ChangeTag::Equal => {}
            }
        }
        (gone, added)
    }

    #[track_caller]
    fn assert_changed(old: &str, e: Edit, gone: &[&str], added: &[&str]) -> Edited {
        let out = run(old, e);
        let (g, a) = lines_changed(old, &out.text);
        assert_eq!((g, a), (s(gone), s(added)), "new text:\n{}", out.text);
        parse_policy(&out.text, "p.toml", &table()).unwrap();
        out
    }

    #[test]
    fn allow_appends_and_keeps_everything_else() {
        let out = assert_changed(
            ADMIN,
            Edit::Allow(s(&["https"])),
            &["allow = [\"8443/tcp\"]"],
            &["allow = [\"8443/tcp\", \"https\"]"],
        );
        assert_eq!(out.changes, ["allow https"]);
        // A list written one entry a line gets one line more, indented
        // alike, the comment after the last entry still on its line; ssh
        // was blocked, so allowing it takes it off `block`, comment kept.
        let out = assert_changed(
            HAND,
            Edit::Allow(s(&["ssh,9100/tcp"])),
            &["block   =   [\"ftp\", \"ssh\"]   # ssh only through the bastion (see below)"],
            &[
                "  \"ssh\",",
                "  \"9100/tcp\",",
                "block   =   [\"ftp\"]   # ssh only through the bastion (see below)",
            ],
        );
        assert_eq!(
            out.changes,
            ["take ssh off `block`", "allow ssh", "allow 9100/tcp"]
        );
        // And back: the comment of the entry before stays on its line.
        let back = run(&out.text, Edit::Forget("9100/tcp".into()));
        let back = run(&back.text, Edit::Block(s(&["ssh"])));
        assert_eq!(back.text, HAND);
    }

    #[test]
    fn allow_twice_changes_nothing() {
        let out = run(HAND, Edit::Allow(s(&["8443/tcp", "https"])));
        assert_eq!(out.text, HAND);
        assert_eq!(
            out.unchanged,
            ["8443/tcp is already allowed", "https is already allowed"]
        );
        assert!(!out.changed(HAND));
    }

    #[test]
    fn block_takes_it_off_allow_and_keeps_comments() {
        let out = assert_changed(
            HAND,
            Edit::Block(s(&["8443/tcp"])),
            &[
                "  \"8443/tcp\", # the admin panel",
                "block   =   [\"ftp\", \"ssh\"]   # ssh only through the bastion (see below)",
            ],
            &[
                "block   =   [\"ftp\", \"ssh\", \"8443/tcp\"]   # ssh only through the bastion (see below)",
            ],
        );
        assert_eq!(out.changes, ["take 8443/tcp off `allow`", "block 8443/tcp"]);
        // The first entry of a list on one line.
        assert_changed(
            "block = [\"ftp\", \"ssh\"]\n",
            Edit::Allow(s(&["ftp"])),
            &["block = [\"ftp\", \"ssh\"]"],
            &["block = [\"ssh\"]", "allow = [\"ftp\"]"],
        );
    }

    #[test]
    fn limit_sets_or_replaces_and_makes_a_section() {
        assert_changed(
            HAND,
            Edit::Limit("ssh=5/minute".into()),
            &["limit = true # like ufw limit"],
            &["limit = \"5/minute\" # like ufw limit"],
        );
        let out = assert_changed(
            ADMIN,
            Edit::Limit("https".into()),
            &[],
            &["", "[service.https]", "limit = true"],
        );
        assert_eq!(out.changes, ["[service.https] limit = true"]);
        let out = run(ADMIN, Edit::Limit("53/udp=20/second".into()));
        assert_eq!(out.unchanged, ["53/udp already has limit = \"20/second\""]);
        assert_eq!(out.text, ADMIN);
    }

    #[test]
    fn source_adds_networks_and_forget_takes_them_off() {
        let out = assert_changed(
            HAND,
            Edit::Source("ssh=198.51.100.0/24,192.0.2.0/24".into()),
            &["sources = [\"192.0.2.0/24\", \"2001:db8:1::/48\"]"],
            &["sources = [\"192.0.2.0/24\", \"2001:db8:1::/48\", \"198.51.100.0/24\"]"],
        );
        assert_eq!(out.changes, ["[service.ssh] sources += 198.51.100.0/24"]);
        assert_eq!(out.unchanged, ["192.0.2.0/24 is already a source of ssh"]);
        let back = run(&out.text, Edit::Forget("ssh=198.51.100.0/24".into()));
        assert_eq!(back.text, HAND);
        assert_changed(
            ADMIN,
            Edit::Source("5432/tcp=10.0.0.0/8".into()),
            &[],
            &["", "[service.\"5432/tcp\"]", "sources = [\"10.0.0.0/8\"]"],
        );
    }

    #[test]
    fn forget_removes_every_mention() {
        let out = assert_changed(
            HAND,
            Edit::Forget("ssh".into()),
            &[
                "block   =   [\"ftp\", \"ssh\"]   # ssh only through the bastion (see below)",
                "",
                "",
                "# ssh: from the bastion networks only",
                "[service.ssh]",
                "sources = [\"192.0.2.0/24\", \"2001:db8:1::/48\"]",
                "limit = true # like ufw limit",
            ],
            &["block   =   [\"ftp\"]   # ssh only through the bastion (see below)"],
        );
        assert_eq!(
            out.changes,
            ["take ssh off `block`", "remove [service.ssh]"]
        );
        let out = assert_changed(
            ADMIN,
            Edit::Forget("53/udp".into()),
            &[
                "",
                "[service.\"53/udp\"]",
                "limit = \"20/second\"",
                "limit_burst = 40",
            ],
            &[],
        );
        assert_eq!(out.changes, ["remove [service.53/udp]"]);
    }

    #[test]
    fn a_new_file_gets_the_header_then_the_key() {
        let out = run("", Edit::Allow(s(&["https"])));
        assert_eq!(out.text, format!("{HEADER}\nallow = [\"https\"]\n"));
        parse_policy(&out.text, "p.toml", &table()).unwrap();
        let out = run("", Edit::Source("ssh=192.0.2.0/24".into()));
        assert_eq!(
            out.text,
            format!("{HEADER}\n[service.ssh]\nsources = [\"192.0.2.0/24\"]\n")
        );
        // A file of comments only keeps them on top too.
        let out = run("# mine\n", Edit::Block(s(&["ftp"])));
        assert_eq!(out.text, "# mine\n\nblock = [\"ftp\"]\n");
    }

    #[test]
    fn bad_edits_are_refused_and_say_why() {
        assert!(err(ADMIN, Edit::Allow(s(&["htps"]))).contains("unknown service `htps`"));
        assert!(err(ADMIN, Edit::Allow(vec![])).contains("needs at least one SPEC"));
        assert!(err(ADMIN, Edit::Limit("ssh=often".into())).contains("bad rate `often`"));
        assert!(err(ADMIN, Edit::Source("ssh".into())).contains("expected SPEC=NET"));
        assert!(
            err(ADMIN, Edit::Source("ssh=192.0.2.5/24".into()))
                .contains("did you mean `192.0.2.0/24`")
        );
        assert!(err(ADMIN, Edit::Forget("https".into())).contains("nothing to forget"));
        let one = "[service.ssh]\nsources = [\"192.0.2.0/24\"]\n";
        let e = err(one, Edit::Forget("ssh=192.0.2.0/24".into()));
        assert!(e.contains("no sources") && e.contains("unchanged"), "{e}");
        assert!(err("allow = [", Edit::Allow(s(&["ssh"]))).contains("not valid TOML"));
        assert!(err("allow = \"ssh\"\n", Edit::Allow(s(&["http"]))).contains("not a list"));
        // An edit whose result the policy parser refuses: an unknown key
        // elsewhere in the file.
        let e = err("alow = [\"x\"]\n", Edit::Allow(s(&["ssh"])));
        assert!(
            e.contains("would leave p.toml an invalid policy") && e.contains("alow"),
            "{e}"
        );
        // A limit of an unknown spec in a [service] section: validated as a
        // whole, the parser names the place.
        let e = err(
            "[service.ssh]\nlimit_burst = 0\n",
            Edit::Limit("ssh".into()),
        );
        assert!(e.contains("limit_burst` must be at least 1"), "{e}");
    }

    #[test]
    fn digest_tells_files_apart() {
        assert_eq!(text_digest(b"a"), text_digest(b"a"));
        // FNV-1a's published value for "a": digests recorded by earlier
        // applies still compare equal.
        assert_eq!(text_digest(b"a"), "af63dc4c8601ec8c");
        assert_ne!(text_digest(b"allow = []"), text_digest(b"allow = [] "));
    }
}
