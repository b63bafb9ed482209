//! The `claimdb` binary: argument parsing and dispatch to one module per command. Exit codes:
//! 0 success, 1 a negative verdict (reserved for checks such as `rules test`), 2 usage or
//! operational error.

mod audit;
mod config;
mod export;
mod import;
mod issuer_keys;
mod jsonl;
mod migrate;
mod nofile;
mod rules;
mod serve;
mod signin;
mod storage;
mod token;

use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc instead of glibc malloc: the request path allocates per request (JSON values, rules
/// values, headers); see BENCHMARKS.md "Authorized HTTP" for what it measured.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "claimdb",
    version,
    about = "A document database whose every read and write is decided by security rules over your identity provider's token claims.",
    long_about = "claimdb stores JSON documents at paths like `movies/m1` or `users/u1/posts/p1` and serves \
them over HTTP (/v1/docs, /v1/query, /v1/batch).\n\nStart a local instance with `claimdb serve` \
(data in ./claimdb-data, listening on 127.0.0.1:8787), then try:\n  \
curl -X PUT localhost:8787/v1/docs/movies/m1 -H 'content-type: application/json' -d '{\"title\":\"Up\"}'\n  \
curl localhost:8787/v1/docs/movies/m1",
    after_help = "Exit codes: 0 ok, 1 a negative verdict, 2 usage or operational error.\nRun `claimdb <command> --help` for each command's options."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the configuration comes from; shared by every command that opens the data directory.
#[derive(clap::Args, Clone)]
struct ConfigArgs {
    /// TOML configuration file. Without one, defaults apply; every key can also be set as
    /// CLAIMDB_<KEY> (CLAIMDB_LISTEN, CLAIMDB_DATA_DIR, CLAIMDB_MAX_BODY_BYTES, CLAIMDB_LOG,
    /// CLAIMDB_PROVIDERS, CLAIMDB_KEY_CACHE, CLAIMDB_RULES, CLAIMDB_ADMIN_KEY, CLAIMDB_ADMIN_ROLES,
    /// CLAIMDB_EXPLAIN_DENIALS, CLAIMDB_PUBLIC_URL, CLAIMDB_APP_REDIRECTS, CLAIMDB_ISSUER,
    /// CLAIMDB_CUSTOM_TOKEN_SIGNERS, CLAIMDB_STORAGE, CLAIMDB_POSTGRES_URL,
    /// CLAIMDB_POSTGRES_SCHEMA, CLAIMDB_POSTGRES_POOL_SIZE).
    #[arg(long, short = 'c', env = "CLAIMDB_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (overrides the file and CLAIMDB_DATA_DIR) [default: ./claimdb-data]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server. With no configuration: data in ./claimdb-data, listening on
    /// 127.0.0.1:8787. Stops gracefully on Ctrl-C / SIGTERM.
    Serve {
        #[command(flatten)]
        config: ConfigArgs,
        /// Address to listen on, IP:PORT (port 0 picks a free port) [default: 127.0.0.1:8787]
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Write every document as JSON lines ({"path","data","create_time","update_time","version"}),
    /// in path order. Safe while the server runs.
    Export {
        #[command(flatten)]
        config: ConfigArgs,
        /// Output file; `-` or omitted writes to standard output.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Load documents from JSON lines made by `claimdb export` (or by hand: "path" and "data" are
    /// required; times and versions are kept when given). The whole file is checked first: a bad
    /// line writes nothing.
    Import {
        #[command(flatten)]
        config: ConfigArgs,
        /// Input file; `-` reads standard input.
        #[arg(value_name = "FILE")]
        input: PathBuf,
    },
    /// Copy every document and system record from one store to another (SQLite ⇄ PostgreSQL),
    /// then verify that the target matches. Stop the nodes writing to the source first. A
    /// non-empty target is refused unless --resume or --rollback says what to do with it.
    /// Exit 0 copied and verified, 1 verification found a difference, 2 error.
    Migrate {
        /// Source store: sqlite:DATA_DIR, or a postgres:// URL (append ?schema=NAME for a
        /// claimdb database in its own PostgreSQL schema).
        #[arg(long, value_name = "STORE", required_unless_present = "rollback")]
        from: Option<String>,
        /// Target store, in the same forms as --from.
        #[arg(long, value_name = "STORE")]
        to: String,
        /// Continue an interrupted migration after the last document present in the target.
        #[arg(long, conflicts_with = "rollback")]
        resume: bool,
        /// Undo an interrupted migration: delete every document and record from the target,
        /// leaving it empty (needs only --to).
        #[arg(long)]
        rollback: bool,
        /// Stop after copying this many documents (to migrate in steps; continue with --resume).
        #[arg(long, value_name = "N", conflicts_with = "rollback")]
        max_documents: Option<u64>,
    },
    /// Show authorization decisions from the audit log (<data_dir>/audit; safe while the server
    /// runs): the newest --limit matches, oldest first, as a table or as JSON lines.
    #[command(
        after_help = "Examples:\n  claimdb audit --deny --since 1h\n  claimdb audit --uid alice --path movies --since 2026-11-23T14:00:00Z --json"
    )]
    Audit {
        #[command(flatten)]
        config: ConfigArgs,
        /// Only denials.
        #[arg(long)]
        deny: bool,
        /// Only decisions at or after this time: a duration back from now (90s, 30m, 1h, 2d, 1w)
        /// or an RFC 3339 time.
        #[arg(long, value_name = "WHEN", value_parser = audit::parse_when)]
        since: Option<std::time::SystemTime>,
        /// Only decisions before this time (same forms as --since).
        #[arg(long, value_name = "WHEN", value_parser = audit::parse_when)]
        until: Option<std::time::SystemTime>,
        /// Only this user's decisions.
        #[arg(long, value_name = "UID")]
        uid: Option<String>,
        /// Only this path and everything below it (`movies` matches `movies/m1`, not `movies2`).
        #[arg(long, value_name = "PATH")]
        path: Option<String>,
        /// At most this many decisions (the newest).
        #[arg(long, value_name = "N", default_value_t = 1000,
              value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
        limit: u64,
        /// Print the log's JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check and test Firestore security rules offline.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Work with JWTs.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Show a token's header and claims, which configured provider its `iss` selects, and
    /// whether it verifies (signature, issuer, audience, times) — if not, exactly why.
    /// Exit 0 when it verifies, 1 when it does not.
    Inspect {
        #[command(flatten)]
        config: ConfigArgs,
        /// The token (a JWT); `-` reads it from standard input.
        #[arg(value_name = "JWT")]
        token: String,
    },
    /// Print a claimdb ID token for a user, signed with the data directory's issuer key
    /// (created on first use). For development and scripts; tokens live at most one hour.
    Mint {
        #[command(flatten)]
        config: ConfigArgs,
        /// The user id (the token's `sub`), 1 to 128 bytes.
        #[arg(long, value_name = "UID")]
        uid: String,
        /// Custom claims, a JSON object of at most 1000 bytes (reserved names refused).
        #[arg(long, value_name = "JSON")]
        claims: Option<String>,
        /// Lifetime such as 30m, 1h or 900s [default: 1h, the maximum]
        #[arg(long, value_name = "DURATION")]
        ttl: Option<String>,
    },
    /// Make a new issuer signing key now. The previous key stays in the JWKS until every token
    /// it signed has expired; a running server picks the new key up by itself.
    RotateKeys {
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Compile a rules file and report every error with line:column and a caret.
    /// Exit 0 when it compiles, 1 when it does not.
    Check {
        #[arg(value_name = "RULES")]
        file: PathBuf,
    },
    /// Run test cases (YAML or JSON: `cases: [{name, auth, method, path, existing, data, query,
    /// expect}]`) against a rules file; prints each failure with its explanation, then the
    /// coverage of every allow statement. Exit 0 when all pass, 1 otherwise.
    Test {
        #[arg(value_name = "RULES")]
        rules: PathBuf,
        #[arg(value_name = "CASES")]
        cases: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config, listen } => serve::run(&config, listen),
        Command::Export { config, output } => export::run(&config, output.as_deref()),
        Command::Import { config, input } => import::run(&config, &input),
        Command::Migrate {
            from,
            to,
            resume,
            rollback,
            max_documents,
        } => migrate::run(migrate::Args {
            from,
            to,
            resume,
            rollback,
            max_documents,
        }),
        Command::Audit {
            config,
            deny,
            since,
            until,
            uid,
            path,
            limit,
            json,
        } => audit::run(
            &config,
            audit::AuditArgs {
                deny,
                since,
                until,
                uid,
                path,
                limit: usize::try_from(limit).unwrap_or(usize::MAX),
                json,
            },
        ),
        Command::Rules(RulesCommand::Check { file }) => rules::check(&file),
        Command::Rules(RulesCommand::Test { rules, cases }) => rules::test(&rules, &cases),
        Command::Token(TokenCommand::Inspect { config, token }) => {
            token::inspect_command(&config, &token)
        }
        Command::Token(TokenCommand::Mint {
            config,
            uid,
            claims,
            ttl,
        }) => token::mint_command(&config, &uid, claims.as_deref(), ttl.as_deref()),
        Command::Token(TokenCommand::RotateKeys { config }) => token::rotate_command(&config),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("claimdb: error: {err:#}");
            ExitCode::from(2)
        }
    }
}

impl ConfigArgs {
    fn load(&self, listen: Option<String>) -> anyhow::Result<config::Config> {
        config::Config::load(
            self.config.as_deref(),
            |k| std::env::var(k).ok(),
            &config::Overrides {
                listen,
                data_dir: self.data_dir.clone(),
            },
        )
    }
}

/// A multi-threaded runtime for the commands that need one.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
