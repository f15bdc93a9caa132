//! One row as the readers see it, whichever database held it: the parsing of sessions, clients
//! and refusals is written once against [`StoredRow`], and SQLite's and PostgreSQL's rows
//! provide their values through it.

use std::time::SystemTime;

use postgres::types::Type;
use rusqlite::types::Value as SqlValue;

use crate::timestamp;

/// A stored value. SQLite keeps times as RFC 3339 text, PostgreSQL as `timestamptz`.
#[derive(Debug)]
pub(crate) enum Cell {
    Null,
    Integer(i64),
    Text(String),
    Time(SystemTime),
}

/// A row whose columns are read by name.
pub(crate) trait StoredRow {
    /// The value of `column`, or why it cannot be read.
    fn cell(&self, column: &'static str) -> Result<Cell, String>;

    /// Text, required.
    fn text(&self, column: &'static str) -> Result<String, String> {
        match self.cell(column)? {
            Cell::Text(text) => Ok(text),
            other => Err(format!("expected text, found {other:?}")),
        }
    }

    /// Text or NULL.
    fn optional_text(&self, column: &'static str) -> Result<Option<String>, String> {
        match self.cell(column)? {
            Cell::Null => Ok(None),
            Cell::Text(text) => Ok(Some(text)),
            other => Err(format!("expected text or NULL, found {other:?}")),
        }
    }

    /// An integer or NULL.
    fn optional_integer(&self, column: &'static str) -> Result<Option<i64>, String> {
        match self.cell(column)? {
            Cell::Null => Ok(None),
            Cell::Integer(n) => Ok(Some(n)),
            other => Err(format!("expected an integer or NULL, found {other:?}")),
        }
    }

    /// An integer, required.
    fn integer(&self, column: &'static str) -> Result<i64, String> {
        self.optional_integer(column)?
            .ok_or_else(|| "expected an integer, found NULL".to_string())
    }

    /// A count, never negative.
    fn count(&self, column: &'static str) -> Result<u64, String> {
        let n = self.integer(column)?;
        u64::try_from(n).map_err(|_| format!("{n} is negative"))
    }

    /// A point in time, required.
    fn time(&self, column: &'static str) -> Result<SystemTime, String> {
        match self.cell(column)? {
            Cell::Text(text) => timestamp::parse(&text),
            Cell::Time(time) => Ok(time),
            other => Err(format!("expected a time, found {other:?}")),
        }
    }
}

impl StoredRow for rusqlite::Row<'_> {
    fn cell(&self, column: &'static str) -> Result<Cell, String> {
        match self.get::<_, SqlValue>(column).map_err(|e| e.to_string())? {
            SqlValue::Null => Ok(Cell::Null),
            SqlValue::Integer(n) => Ok(Cell::Integer(n)),
            SqlValue::Text(text) => Ok(Cell::Text(text)),
            other => Err(format!("unexpected {:?}", other.data_type())),
        }
    }
}

impl StoredRow for postgres::Row {
    fn cell(&self, column: &'static str) -> Result<Cell, String> {
        let index = self
            .columns()
            .iter()
            .position(|c| c.name() == column)
            .ok_or_else(|| format!("no column {column}"))?;
        let kind = self.columns()[index].type_().clone();
        let cell = if kind == Type::INT8 {
            self.try_get::<_, Option<i64>>(index)
                .map(|v| v.map(Cell::Integer))
        } else if kind == Type::INT4 {
            self.try_get::<_, Option<i32>>(index)
                .map(|v| v.map(|n| Cell::Integer(n.into())))
        } else if kind == Type::TIMESTAMPTZ {
            self.try_get::<_, Option<SystemTime>>(index)
                .map(|v| v.map(Cell::Time))
        } else if kind == Type::TEXT {
            self.try_get::<_, Option<String>>(index)
                .map(|v| v.map(Cell::Text))
        } else {
            return Err(format!("unexpected type {kind}"));
        };
        Ok(cell.map_err(|e| e.to_string())?.unwrap_or(Cell::Null))
    }
}
