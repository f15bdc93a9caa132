//! The client inventory turned into what people read: the rows `mailtls clients` lists, the
//! readiness and evidence report (`mailtls report`: self-contained HTML, JSON, CSV, with a
//! digest over its data), and the live dashboard.

#![warn(missing_docs)]

mod client_row;
mod filter;

pub use client_row::{clients_csv, sort_by_risk, ClientRow};
pub use filter::{parse_time, utc_day, ClientFilter, UnreadableTime};
mod chart;
mod evidence;
mod guidance;
mod page;
mod register;

pub use evidence::{Count, CoveredRange, DayRow, Ownership, ReportData, Totals};
pub use guidance::RoleAdvice;
pub use page::{render_html, verify, LiveView, PageError, VerifiedReport};
pub use register::{ExceptionRow, RegisterSection, WarningRow};
mod dashboard;

pub use dashboard::{check_exposure, serve, DashboardError, DashboardToken, PolicySource};
