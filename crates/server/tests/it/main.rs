//! Server tests: the API in-process against a real SQLite file and, when
//! `LEADROUTE_TEST_POSTGRES_URL` names a server, a fresh PostgreSQL database.

mod api;
mod application;
mod batch;
mod browser;
mod concurrency;
mod console;
mod duplicates;
mod follow_up;
mod intake;
mod integrations;
mod notify;
mod scoring;
mod security;
mod simulate;
mod story;
mod support;
