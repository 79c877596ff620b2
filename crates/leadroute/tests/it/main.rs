//! The binary end to end: real `leadroute` processes on loopback ports, a real SQLite file and,
//! when `LEADROUTE_TEST_POSTGRES_URL` names a server, a fresh PostgreSQL database.

mod cli;
mod processes;
mod support;
mod upgrade;
