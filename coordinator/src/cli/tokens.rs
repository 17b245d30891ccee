//! `rampart token …` (join tokens for agents) and `rampart admin token …` (operator tokens:
//! create, list, revoke). Secrets are printed once, at creation, and never listed.

use std::time::Duration;

use anyhow::anyhow;
use clap::{Subcommand, ValueEnum};
use rampart_common::labels;
use rampart_common::time::format_ms;
use rampart_proto::v1::{
    CreateJoinTokenRequest, CreateOperatorTokenRequest, ListOperatorTokensRequest,
    OperatorTokenInfo, RevokeOperatorTokenRequest,
};

use super::output::print_table;
use super::{Client, Output, Remote, rpc};
use crate::api::tokens::{role_from_proto, role_to_proto};
use crate::store::Role;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a join token; prints the token (shown only once). Needs the admin role.
    Create {
        /// Label every agent enrolled with it receives, key=value; repeatable.
        #[arg(long = "label", value_name = "KEY=VALUE")]
        labels: Vec<String>,
        /// Validity, e.g. 30m, 1h, 7d (at most 31d).
        #[arg(long, default_value = "1h", value_parser = rampart_common::time::parse_duration)]
        ttl: Duration,
        /// How many agents may enrol with it.
        #[arg(long, default_value_t = 1)]
        uses: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Operator tokens.
    #[command(subcommand)]
    Token(AdminTokenCommand),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Viewer,
    Operator,
    Admin,
}

#[derive(Debug, Subcommand)]
pub enum AdminTokenCommand {
    /// Create an operator token; prints it (shown only once). Needs the admin role.
    Create {
        /// viewer: read only; operator: also runs sweeps and experiments; admin: also tokens and revocation.
        #[arg(long)]
        role: RoleArg,
        /// Who holds it; appears in the audit log.
        #[arg(long, default_value = "operator")]
        name: String,
        /// Validity, e.g. 90d; without it the token does not expire.
        #[arg(long, value_parser = rampart_common::time::parse_duration)]
        ttl: Option<Duration>,
    },
    /// List operator tokens: id, name, role, created, last used, expiry, revocation. Never the
    /// secret. Needs the admin role.
    Ls {
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// Revoke an operator token by id, or by name when exactly one live token has it; it is
    /// refused from then on. The last live admin token cannot be revoked. Needs the admin role.
    Revoke {
        /// Token id (from `admin token ls`) or name.
        #[arg(value_name = "ID|NAME")]
        target: String,
    },
}

/// `rampart token …`.
pub async fn join(client: Client, remote: &Remote, cmd: TokenCommand) -> anyhow::Result<i32> {
    let TokenCommand::Create {
        labels: label_args,
        ttl,
        uses,
    } = cmd;
    let labels = labels::parse_labels(&label_args).map_err(|e| anyhow!(e))?;
    let r = client
        .tokens()
        .create_join_token(CreateJoinTokenRequest {
            labels: labels.into_iter().collect(),
            ttl_seconds: ttl.as_secs(),
            uses,
        })
        .await
        .map_err(rpc)?
        .into_inner();
    println!("{}", r.token);
    eprintln!(
        "join token {} (uses: {}, expires {}). Enrol a host with:\n  RAMPART_JOIN_TOKEN=<token> rampart-agent enroll --coordinator {} --ca-fingerprint <`rampart ca fingerprint`>",
        r.token_id,
        r.uses,
        format_ms(r.expires_unix_ms),
        remote.coordinator.as_deref().unwrap_or("https://HOST:7443"),
    );
    Ok(0)
}

fn role_name(r: i32) -> &'static str {
    role_from_proto(r).map(Role::as_str).unwrap_or("unknown")
}

/// `0` (never / not set) as "-", otherwise the time.
fn when(ms: i64) -> String {
    if ms == 0 { "-".into() } else { format_ms(ms) }
}

fn token_json(t: &OperatorTokenInfo) -> serde_json::Value {
    let opt = |ms: i64| (ms != 0).then_some(ms);
    serde_json::json!({
        "token_id": t.token_id,
        "name": t.name,
        "role": role_name(t.role),
        "created_unix_ms": t.created_unix_ms,
        "last_used_unix_ms": opt(t.last_used_unix_ms),
        "expires_unix_ms": opt(t.expires_unix_ms),
        "revoked_unix_ms": opt(t.revoked_unix_ms),
    })
}

/// `rampart admin token …`.
pub async fn operator(client: Client, cmd: AdminTokenCommand) -> anyhow::Result<i32> {
    match cmd {
        AdminTokenCommand::Create { role, name, ttl } => {
            let role = match role {
                RoleArg::Viewer => Role::Viewer,
                RoleArg::Operator => Role::Operator,
                RoleArg::Admin => Role::Admin,
            };
            let r = client
                .tokens()
                .create_operator_token(CreateOperatorTokenRequest {
                    role: role_to_proto(role),
                    name,
                    ttl_seconds: ttl.map(|d| d.as_secs()).unwrap_or(0),
                })
                .await
                .map_err(rpc)?
                .into_inner();
            println!("{}", r.token);
            eprintln!(
                "operator token {} with role {} (expires {})",
                r.token_id,
                role.as_str(),
                format_ms(r.expires_unix_ms)
            );
            Ok(0)
        }
        AdminTokenCommand::Ls { output } => {
            let r = client
                .tokens()
                .list_operator_tokens(ListOperatorTokensRequest {})
                .await
                .map_err(rpc)?
                .into_inner();
            match output {
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &r.tokens.iter().map(token_json).collect::<Vec<_>>()
                    )?
                ),
                Output::Table => {
                    let now = rampart_common::time::now_ms();
                    let rows: Vec<Vec<String>> = r
                        .tokens
                        .iter()
                        .map(|t| {
                            let state = if t.revoked_unix_ms != 0 {
                                "revoked"
                            } else if t.expires_unix_ms != 0 && t.expires_unix_ms <= now {
                                "expired"
                            } else {
                                "active"
                            };
                            vec![
                                t.token_id.clone(),
                                t.name.clone(),
                                role_name(t.role).into(),
                                state.into(),
                                format_ms(t.created_unix_ms),
                                when(t.last_used_unix_ms),
                                if t.expires_unix_ms == 0 {
                                    "never".into()
                                } else {
                                    format_ms(t.expires_unix_ms)
                                },
                            ]
                        })
                        .collect();
                    print_table(
                        &[
                            "ID",
                            "NAME",
                            "ROLE",
                            "STATE",
                            "CREATED",
                            "LAST USED",
                            "EXPIRES",
                        ],
                        &rows,
                    );
                }
            }
            Ok(0)
        }
        AdminTokenCommand::Revoke { target } => {
            let t = client
                .tokens()
                .revoke_operator_token(RevokeOperatorTokenRequest { token: target })
                .await
                .map_err(rpc)?
                .into_inner();
            println!(
                "revoked operator token {} ({}, {})",
                t.token_id,
                t.name,
                role_name(t.role)
            );
            Ok(0)
        }
    }
}
