//! HTTP: the accept loop with its abuse limits ([`server`]), and answering one request from
//! the current snapshot ([`routes`]), with content negotiation ([`encoding`]) and conditional
//! requests ([`conditional`]). Nothing here reads the disk, parses or renders.

pub mod conditional;
pub mod encoding;
pub mod routes;
pub mod server;
