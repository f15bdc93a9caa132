//! The exception register edited in place (`mailtls exceptions add|remove|renew`): the TOML
//! document that holds the `[[exception]]` entries (the config, or the file
//! `[exception_register] file` names) changed with `toml_edit`, so comments, order and
//! formatting of everything else stay as the operator wrote them, then written atomically with
//! the file's mode and owner.

use std::fs::{self, File, Permissions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use toml_edit::{value, ArrayOfTables, DocumentMut, Item, Table};

/// What an edit of the register could not do.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The file could not be read, or the new one written.
    #[error("{path}: {source}")]
    Io {
        /// The register's file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not TOML.
    #[error("{path} is not valid TOML: {problem}")]
    Syntax {
        /// The register's file.
        path: PathBuf,
        /// The parser's words.
        problem: String,
    },
    /// No exception has the id.
    #[error("no exception has id {0}; `mailtls exceptions list` shows the ids")]
    NoSuchId(u32),
    /// `exception` is something other than `[[exception]]` entries.
    #[error("{0}: exception is not a list of [[exception]] entries")]
    NotEntries(PathBuf),
}

/// A new exception's keys, as given on the command line (validation comes after, on the whole
/// edited config, exactly as `check-config` does it).
#[derive(Debug, Default)]
pub struct NewException<'a> {
    pub client: Option<&'a str>,
    pub user: Option<&'a str>,
    pub ja4: Option<&'a str>,
    pub owner: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub expires: Option<&'a str>,
    pub plan: Option<&'a str>,
    pub allow_broad: bool,
    /// The day it is added ("2026-12-03").
    pub added: &'a str,
}

/// The register's document, being edited.
pub struct RegisterEdit {
    path: PathBuf,
    doc: DocumentMut,
    /// The file does not exist yet (an `[exception_register] file` before its first entry).
    new_file: bool,
    /// An exclusive lock on `.<register>.lock` beside the register, held from the read to the
    /// write (released on drop), so two edits at once cannot both read the old file and one
    /// silently undo the other. `None` in unit tests of the document alone.
    _lock: Option<File>,
}

/// The register's key for the id `add` gives next.
const NEXT_ID_KEY: &str = "next_exception_id";

/// The comment above a `next_exception_id` line an edit adds.
const NEXT_ID_COMMENT: &str =
    "# The id `mailtls exceptions add` gives next: ids of removed exceptions are never reused.\n";

/// The mode of a register file `add` creates: like the config, readable by its owner only.
const NEW_FILE_MODE: u32 = 0o600;

impl RegisterEdit {
    /// Reads the register's file at `path`; a missing one is an empty register, created when
    /// written.
    pub fn open(path: &Path) -> Result<RegisterEdit, RegisterError> {
        let io = |source| RegisterError::Io {
            path: path.to_owned(),
            source,
        };
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let lock = File::options()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(NEW_FILE_MODE)
            .open(path.with_file_name(format!(".{name}.lock")))
            .map_err(io)?;
        lock.lock().map_err(io)?;
        let (text, new_file) = match fs::read_to_string(path) {
            Ok(text) => (text, false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), true),
            Err(source) => {
                return Err(RegisterError::Io {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        let doc = text
            .parse::<DocumentMut>()
            .map_err(|e| RegisterError::Syntax {
                path: path.to_owned(),
                problem: e.message().to_owned(),
            })?;
        let mut edit = RegisterEdit {
            path: path.to_owned(),
            doc,
            new_file,
            _lock: Some(lock),
        };
        edit.pin_ids()?;
        Ok(edit)
    }

    /// The file being edited.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The document as it would be written.
    pub fn text(&self) -> String {
        self.doc.to_string()
    }

    /// Appends `new` after the last entry with the next id, and returns that id. The new
    /// entry's keys are written in the order `list` shows them.
    pub fn add(&mut self, new: &NewException<'_>) -> Result<u32, RegisterError> {
        let id = self.next_id()?;
        self.set_next_id(id + 1);
        let mut table = Table::new();
        table.insert("id", value(i64::from(id)));
        for (key, text) in [
            ("client", new.client),
            ("user", new.user),
            ("ja4", new.ja4),
            ("owner", new.owner),
            ("reason", new.reason),
            ("expires", new.expires),
            ("plan", new.plan),
        ] {
            if let Some(text) = text {
                table.insert(key, value(text));
            }
        }
        if new.allow_broad {
            table.insert("allow_broad", value(true));
        }
        table.insert("added", value(new.added));
        match self.doc.get_mut("exception") {
            Some(Item::ArrayOfTables(entries)) => entries.push(table),
            Some(_) => return Err(RegisterError::NotEntries(self.path.clone())),
            None => {
                let mut entries = ArrayOfTables::new();
                entries.push(table);
                self.doc.insert("exception", Item::ArrayOfTables(entries));
            }
        }
        Ok(id)
    }

    /// Removes the exception `id`, with the comment lines directly above its header; a comment
    /// paragraph set off from the header by a blank line (such as one that explains the whole
    /// register) is kept, above whatever follows.
    pub fn remove(&mut self, id: u32) -> Result<(), RegisterError> {
        // Kept before the entry goes: if it had the highest id, that id stays given.
        let next = self.next_id()?;
        if !self.entries_mut()?.iter().any(|t| entry_id(t) == Some(id)) {
            return Err(RegisterError::NoSuchId(id));
        }
        self.set_next_id(next);
        let entries = self.entries_mut()?;
        let index = entries
            .iter()
            .position(|t| entry_id(t) == Some(id))
            .ok_or(RegisterError::NoSuchId(id))?;
        let removed = entries.remove(index);
        let prefix = removed
            .decor()
            .prefix()
            .and_then(|p| p.as_str())
            .unwrap_or("");
        let kept = detached_comments(prefix);
        if kept.is_empty() {
            return Ok(());
        }
        let kept = kept.to_owned();
        match entries.get_mut(index) {
            Some(next) => prepend_prefix(next, &kept),
            None => {
                let after = removed.position().unwrap_or(isize::MAX);
                if !prepend_to_table_after(self.doc.as_table_mut(), after, &kept) {
                    let trailing = self.doc.trailing().as_str().unwrap_or("").to_owned();
                    self.doc.set_trailing(format!("{trailing}{kept}"));
                }
            }
        }
        Ok(())
    }

    /// Sets the exception `id`'s expiry (and plan, when given), keeping the keys' places.
    pub fn renew(
        &mut self,
        id: u32,
        expires: &str,
        plan: Option<&str>,
    ) -> Result<(), RegisterError> {
        let entry = self
            .entries_mut()?
            .iter_mut()
            .find(|t| entry_id(t) == Some(id))
            .ok_or(RegisterError::NoSuchId(id))?;
        set_keeping_decor(entry, "expires", expires);
        if let Some(plan) = plan {
            set_keeping_decor(entry, "plan", plan);
        }
        Ok(())
    }

    /// Writes the document: a temporary file beside the register with its mode and owner, then
    /// renamed over it, so a reader (the gateway starting, `check-config`) sees the old file or
    /// the new one, never half of one.
    pub fn write(&self) -> Result<(), RegisterError> {
        let io = |source| RegisterError::Io {
            path: self.path.clone(),
            source,
        };
        // A new file gets its mode and whoever writes it as owner.
        let (mode, owner) = if self.new_file {
            (NEW_FILE_MODE, None)
        } else {
            let old = fs::metadata(&self.path).map_err(io)?;
            (old.mode() & 0o7777, Some((old.uid(), old.gid())))
        };
        let name = self.path.file_name().unwrap_or_default().to_string_lossy();
        let temporary = self
            .path
            .with_file_name(format!(".{name}.edit-{}", std::process::id()));
        let written = (|| {
            let mut file = File::options()
                .write(true)
                .create_new(true)
                .open(&temporary)?;
            // Mode first, so the register is never readable by more than the old file was.
            file.set_permissions(Permissions::from_mode(mode))?;
            let made = file.metadata()?;
            if let Some((uid, gid)) = owner.filter(|&o| o != (made.uid(), made.gid())) {
                std::os::unix::fs::fchown(&file, Some(uid), Some(gid))?;
            }
            file.write_all(self.text().as_bytes())?;
            file.sync_all()?;
            fs::rename(&temporary, &self.path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&temporary);
        }
        written.map_err(io)
    }

    /// The id the next exception gets: `next_exception_id`, or one above the highest id if
    /// that is higher (a register from before the key, or edited by hand).
    ///
    /// Ids are never given twice: a session recorded with an id, a ticket or a report that
    /// names one must not come to mean another exception. Remembering the high-water mark in
    /// the register itself is the simplest way that survives removals, restores from a backup
    /// of the register alone, and stores that were pruned or never saw the removed exception.
    fn next_id(&self) -> Result<u32, RegisterError> {
        let highest = self.entries()?.map_or(0, |entries| {
            entries.iter().filter_map(entry_id).max().unwrap_or(0)
        });
        let recorded = self
            .doc
            .get(NEXT_ID_KEY)
            .and_then(Item::as_integer)
            .and_then(|next| u32::try_from(next).ok())
            .unwrap_or(0);
        Ok(recorded.max(highest + 1))
    }

    /// Writes `next_exception_id`: in place when the register has it, else as the document's
    /// first line, with a comment saying what it is.
    fn set_next_id(&mut self, next: u32) {
        let mut new = toml_edit::Value::from(i64::from(next));
        // Replaced where it stands: inserting again would drop the comment above the key.
        if let Some(item) = self.doc.get_mut(NEXT_ID_KEY) {
            if let Some(old) = item.as_value() {
                *new.decor_mut() = old.decor().clone();
            }
            *item = Item::Value(new);
            return;
        }
        self.doc.insert(NEXT_ID_KEY, Item::Value(new));
        if let Some(mut key) = self.doc.key_mut(NEXT_ID_KEY) {
            key.leaf_decor_mut().set_prefix(NEXT_ID_COMMENT);
        }
        // Root keys are written before every table: a blank line sets it off from the first
        // one and its comments.
        prepend_to_table_after(self.doc.as_table_mut(), isize::MIN, "\n");
    }

    /// Gives every entry without an `id` key its position as one. Such an entry's id is its
    /// position, so without this, removing an entry above it would change the id that its
    /// sessions were recorded with; once written, every id stays put.
    fn pin_ids(&mut self) -> Result<(), RegisterError> {
        let Some(entries) = self.entries_mut_if_any()? else {
            return Ok(());
        };
        for (entry, position) in entries.iter_mut().zip(1_i64..) {
            if !entry.contains_key("id") {
                entry.insert("id", value(position));
                // Stable sort: the id first, the other keys in their order.
                entry.sort_values_by(|a, _, b, _| (b.get() == "id").cmp(&(a.get() == "id")));
            }
        }
        Ok(())
    }

    fn entries(&self) -> Result<Option<&ArrayOfTables>, RegisterError> {
        match self.doc.get("exception") {
            None => Ok(None),
            Some(Item::ArrayOfTables(entries)) => Ok(Some(entries)),
            Some(_) => Err(RegisterError::NotEntries(self.path.clone())),
        }
    }

    fn entries_mut_if_any(&mut self) -> Result<Option<&mut ArrayOfTables>, RegisterError> {
        match self.doc.get_mut("exception") {
            None => Ok(None),
            Some(Item::ArrayOfTables(entries)) => Ok(Some(entries)),
            Some(_) => Err(RegisterError::NotEntries(self.path.clone())),
        }
    }

    fn entries_mut(&mut self) -> Result<&mut ArrayOfTables, RegisterError> {
        let path = self.path.clone();
        self.entries_mut_if_any()?
            .ok_or(RegisterError::NotEntries(path))
    }
}

/// An entry's `id` key, when it is a positive number (the only kind `check-config` accepts).
fn entry_id(entry: &Table) -> Option<u32> {
    entry
        .get("id")
        .and_then(Item::as_integer)
        .and_then(|id| u32::try_from(id).ok())
}

/// The part of a header's prefix before its last blank line: comment paragraphs that are not
/// the header's own.
fn detached_comments(prefix: &str) -> &str {
    let lines: Vec<&str> = prefix.split_inclusive('\n').collect();
    match lines.iter().rposition(|line| line.trim().is_empty()) {
        Some(blank) => {
            let end: usize = lines[..=blank].iter().map(|l| l.len()).sum();
            if prefix[..end].contains('#') {
                &prefix[..end]
            } else {
                ""
            }
        }
        None => "",
    }
}

/// Puts `text` (which ends with a blank line) above `table`'s header and its comments, with
/// one blank line between them, not two.
fn prepend_prefix(table: &mut Table, text: &str) {
    let old = table
        .decor()
        .prefix()
        .and_then(|p| p.as_str())
        .unwrap_or("");
    let old = old.trim_start_matches(['\n', '\r']).to_owned();
    table.decor_mut().set_prefix(format!("{text}{old}"));
}

/// Puts `text` above the table written first after document position `after`; false when no
/// table follows.
fn prepend_to_table_after(root: &mut Table, after: isize, text: &str) -> bool {
    fn nearest(table: &Table, after: isize, best: &mut Option<isize>) {
        for (_, item) in table.iter() {
            let tables: Vec<&Table> = match item {
                Item::Table(t) => vec![t],
                Item::ArrayOfTables(a) => a.iter().collect(),
                _ => continue,
            };
            for t in tables {
                if let Some(p) = t.position().filter(|&p| p > after && !t.is_implicit()) {
                    if best.is_none_or(|b| p < b) {
                        *best = Some(p);
                    }
                }
                nearest(t, after, best);
            }
        }
    }
    fn prepend_at(table: &mut Table, position: isize, text: &str) -> bool {
        for (_, item) in table.iter_mut() {
            let tables: Vec<&mut Table> = match item {
                Item::Table(t) => vec![t],
                Item::ArrayOfTables(a) => a.iter_mut().collect(),
                _ => continue,
            };
            for t in tables {
                if t.position() == Some(position) && !t.is_implicit() {
                    prepend_prefix(t, text);
                    return true;
                }
                if prepend_at(t, position, text) {
                    return true;
                }
            }
        }
        false
    }
    let mut best = None;
    nearest(root, after, &mut best);
    best.is_some_and(|position| prepend_at(root, position, text))
}

/// Sets `key` to the string `text`, keeping the whitespace and comments around the old value.
fn set_keeping_decor(entry: &mut Table, key: &str, text: &str) {
    let mut new = toml_edit::Value::from(text);
    if let Some(old) = entry.get(key).and_then(Item::as_value) {
        *new.decor_mut() = old.decor().clone();
    }
    entry.insert(key, Item::Value(new));
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTER: &str = r#"# The config's own header comment.
[[listener]]
name = "imaps" # trailing comment

# The exception register: one paragraph about all of them.
# Second line of it.

# The lab printer.
[[exception]]
client = "10.20.0.0/24"   # the MFP VLAN
owner = "facilities@lab.example"
reason = "old firmware"
expires = "2027-03-31"
plan = "replace it"

[[exception]]
user = "scanner@lab.example"
owner = "it@lab.example"
reason = "vendor patch pending"
expires = "2027-01-15" # ticket OPS-1182
plan = "firmware 4.2"

[policy.sunset]
mode = "warn"
"#;

    fn edit(text: &str) -> RegisterEdit {
        RegisterEdit {
            path: PathBuf::from("test.toml"),
            doc: text.parse().unwrap(),
            new_file: false,
            _lock: None,
        }
    }

    fn opened(text: &str) -> RegisterEdit {
        let mut e = edit(text);
        e.pin_ids().unwrap();
        e
    }

    #[test]
    fn pinning_writes_positions_as_ids_and_keeps_everything_else() {
        let text = opened(REGISTER).text();
        assert_eq!(
            text,
            REGISTER
                .replace("[[exception]]\nclient", "[[exception]]\nid = 1\nclient")
                .replace("[[exception]]\nuser", "[[exception]]\nid = 2\nuser")
        );
    }

    #[test]
    fn removing_the_first_keeps_the_second_id_and_the_register_paragraph() {
        let mut e = opened(REGISTER);
        e.remove(1).unwrap();
        let text = e.text();
        assert!(!text.contains("10.20.0.0/24"), "{text}");
        assert!(!text.contains("The lab printer"), "{text}");
        assert!(
            text.contains(
                "# The exception register: one paragraph about all of them.\n# Second line of it.\n\n[[exception]]\nid = 2\nuser"
            ),
            "{text}"
        );
        assert!(text.contains("name = \"imaps\" # trailing comment\n"));
        assert!(text.contains("expires = \"2027-01-15\" # ticket OPS-1182\n"));
        assert!(matches!(e.remove(1), Err(RegisterError::NoSuchId(1))));
    }

    #[test]
    fn removing_the_last_keeps_what_follows_in_place() {
        let mut e = opened(REGISTER);
        e.remove(2).unwrap();
        let text = e.text();
        assert!(!text.contains("scanner@lab.example"), "{text}");
        assert!(
            text.ends_with("plan = \"replace it\"\n\n[policy.sunset]\nmode = \"warn\"\n"),
            "{text}"
        );
    }

    #[test]
    fn added_entries_follow_the_last_one_with_the_next_id() {
        let mut e = opened(REGISTER);
        let id = e
            .add(&NewException {
                user: Some("copier@lab.example"),
                owner: Some("facilities@lab.example"),
                reason: Some("no TLS 1.2"),
                expires: Some("2027-02-01"),
                plan: Some("retire it"),
                added: "2026-12-03",
                ..NewException::default()
            })
            .unwrap();
        assert_eq!(id, 3);
        let text = e.text();
        assert!(
            text.contains(
                "plan = \"firmware 4.2\"\n\n[[exception]]\nid = 3\nuser = \"copier@lab.example\"\nowner = \"facilities@lab.example\"\nreason = \"no TLS 1.2\"\nexpires = \"2027-02-01\"\nplan = \"retire it\"\nadded = \"2026-12-03\"\n\n[policy.sunset]"
            ),
            "{text}"
        );
    }

    #[test]
    fn an_empty_register_gets_its_first_entry_at_the_end() {
        let mut e = opened("# only a comment\n[[listener]]\nname = \"a\"\n");
        let id = e
            .add(&NewException {
                client: Some("10.0.0.0/0"),
                allow_broad: true,
                added: "2026-12-03",
                ..NewException::default()
            })
            .unwrap();
        assert_eq!(id, 1);
        assert_eq!(
            e.text(),
            format!("{NEXT_ID_COMMENT}next_exception_id = 2\n\n# only a comment\n[[listener]]\nname = \"a\"\n\n[[exception]]\nid = 1\nclient = \"10.0.0.0/0\"\nallow_broad = true\nadded = \"2026-12-03\"\n")
        );
    }

    #[test]
    fn ids_of_removed_exceptions_are_never_given_again() {
        // The highest id removed, then an exception added: it gets the next id, not 2 again.
        let mut e = opened(REGISTER);
        e.remove(2).unwrap();
        let text = e.text();
        assert!(
            text.starts_with(&format!(
                "{NEXT_ID_COMMENT}next_exception_id = 3\n\n# The config's own header comment.\n"
            )),
            "{text}"
        );
        let new = NewException {
            user: Some("copier@lab.example"),
            added: "2026-12-03",
            ..NewException::default()
        };
        assert_eq!(e.add(&new).unwrap(), 3);
        // Once written and read again, the mark holds even with every entry gone.
        let mut e = opened(&e.text());
        e.remove(3).unwrap();
        e.remove(1).unwrap();
        let mut e = opened(&e.text());
        assert_eq!(e.add(&new).unwrap(), 4);
        let text = e.text();
        assert_eq!(text.matches("next_exception_id").count(), 1, "{text}");
        assert!(
            text.starts_with(&format!("{NEXT_ID_COMMENT}next_exception_id = 5\n")),
            "{text}"
        );

        // A mark kept in place, with its comment; a mark below the ids (edited by hand) is
        // passed, and check-config reports it.
        let mut e = opened(&format!("next_exception_id = 9 # do not lower\n{REGISTER}"));
        assert_eq!(e.add(&new).unwrap(), 9);
        assert!(e
            .text()
            .starts_with("next_exception_id = 10 # do not lower\n"));
        let mut e = opened(&format!("next_exception_id = 1\n{REGISTER}"));
        assert_eq!(e.add(&new).unwrap(), 3);
    }

    #[test]
    fn renewing_changes_only_the_values() {
        let mut e = opened(REGISTER);
        e.renew(2, "2027-06-30", Some("firmware 5")).unwrap();
        let text = e.text();
        assert!(
            text.contains("expires = \"2027-06-30\" # ticket OPS-1182\nplan = \"firmware 5\"\n"),
            "{text}"
        );
        assert!(text.contains("expires = \"2027-03-31\"\n"));
        assert!(matches!(
            e.renew(9, "2027-06-30", None),
            Err(RegisterError::NoSuchId(9))
        ));
    }

    #[test]
    fn writing_keeps_the_mode_and_replaces_the_file_whole() {
        let dir = std::env::temp_dir().join(format!("mailtls-register-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("exceptions.toml");
        fs::write(&path, REGISTER).unwrap();
        fs::set_permissions(&path, Permissions::from_mode(0o640)).unwrap();
        let mut e = RegisterEdit::open(&path).unwrap();
        e.remove(2).unwrap();
        e.write().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), e.text());
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o640);
        let left: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            left.iter().filter(|name| !name.ends_with(".lock")).count(),
            1,
            "no temporary file left: {left:?}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn edits_at_once_each_see_the_others_and_none_is_lost() {
        let dir =
            std::env::temp_dir().join(format!("mailtls-register-race-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("exceptions.toml");
        fs::write(&path, REGISTER).unwrap();
        let adders: Vec<_> = (0..8)
            .map(|n| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let owner = format!("owner{n}@lab.example");
                    let new = NewException {
                        client: Some("10.9.9.0/24"),
                        user: None,
                        ja4: None,
                        owner: Some(&owner),
                        reason: Some("r"),
                        expires: Some("2027-01-01"),
                        plan: Some("p"),
                        allow_broad: false,
                        added: "2026-12-03",
                    };
                    let mut e = RegisterEdit::open(&path).unwrap();
                    let id = e.add(&new).unwrap();
                    e.write().unwrap();
                    id
                })
            })
            .collect();
        let mut ids: Vec<u32> = adders.into_iter().map(|t| t.join().unwrap()).collect();
        ids.sort_unstable();
        assert_eq!(
            ids,
            (3..11).collect::<Vec<u32>>(),
            "each add got its own id"
        );
        let text = fs::read_to_string(&path).unwrap();
        for n in 0..8 {
            assert!(text.contains(&format!("owner{n}@lab.example")), "{text}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
