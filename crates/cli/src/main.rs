//! The `claimdb` binary: argument parsing and dispatch to one module per command. Exit codes:
//! 0 success, 1 a negative verdict (reserved for checks such as `rules test`), 2 usage or
//! operational error.

mod admin_key;
mod audit;
mod check;
mod config;
mod doctor;
mod emulator;
mod export;
mod import;
mod issuer_keys;
mod jsonl;
mod migrate;
mod nofile;
mod permissions;
mod progress;
mod rules;
mod rules_versions;
mod serve;
mod signin;
mod storage;
mod token;
mod transfer;

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
    /// TOML configuration file (see `claimdb serve --help` for the keys; each can also be set
    /// as an environment variable CLAIMDB_<KEY>). Without one, defaults apply.
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
    #[command(after_help = config::keys_help())]
    Serve {
        #[command(flatten)]
        config: ConfigArgs,
        /// Address to listen on, IP:PORT (port 0 picks a free port) [default: 127.0.0.1:8787]
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// A Firestore rules file to enforce, reloaded when it changes (overrides `rules` in the
        /// file and CLAIMDB_RULES).
        #[arg(long, value_name = "FILE")]
        rules: Option<PathBuf>,
    },
    /// Run a Firestore emulator for tests: Firebase SDKs and `@firebase/rules-unit-testing`
    /// connect to it as to Firebase's (FIRESTORE_EMULATOR_HOST). Unsigned tokens and `Bearer
    /// owner` are accepted, every project id gets its own database, data is temporary and the
    /// rules allow everything until a rules file or the emulator's rules endpoint sets them.
    /// Listens on 127.0.0.1:8080 by default; refuses a non-loopback address unless --force.
    Emulator {
        /// Address to listen on, IP:PORT (port 0 picks a free port) [default: 127.0.0.1:8080]
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// The project `/v1/docs` serves (any project id works on the Firestore routes)
        /// [default: demo-claimdb]
        #[arg(long, value_name = "ID")]
        project_id: Option<String>,
        /// A Firestore rules file every project starts with [default: allow everything]
        #[arg(long, value_name = "FILE")]
        rules: Option<PathBuf>,
        /// Keep the data in this directory instead of a temporary one removed at exit.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Start even on a non-loopback address.
        #[arg(long)]
        force: bool,
    },
    /// Check a configuration as an operator would before going live: the file, the store and
    /// its permissions, every provider's keys and clock, the rules, the public URL, cookies and
    /// redirects, admin access. One line per check; exit 0 all ok, 1 a check failed, 2 error.
    Doctor {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Manage the generated admin key.
    #[command(subcommand)]
    AdminKey(AdminKeyCommand),
    /// Back up everything: the signing key ring (private keys), every system record (users,
    /// custom claims, revocations, the admin key's hash, stored rules, sessions) and every
    /// document with its metadata, as JSON lines with a header and an end line. Safe while the
    /// server runs. The audit log is not included.
    Export {
        #[command(flatten)]
        config: ConfigArgs,
        /// Output file, created readable by its owner only (it holds private keys) and replaced
        /// only once complete; `-` or omitted writes to standard output.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Restore a backup made by `claimdb export` into an empty store, exactly: documents with
    /// their times and versions, system records, and the signing keys (into <data_dir>/issuer
    /// with SQLite, into the database with PostgreSQL). The whole file is checked first: a bad
    /// or truncated file writes nothing. Older backups (document lines only, no header) and
    /// hand-written lines ("path" and "data" required) are read too.
    Import {
        #[command(flatten)]
        config: ConfigArgs,
        /// Input file; `-` reads standard input.
        #[arg(value_name = "FILE")]
        input: PathBuf,
        /// Import into a store that already holds data: documents and records replace those at
        /// the same paths and keys, others stay; a signing key ring already there is kept.
        #[arg(long)]
        merge: bool,
    },
    /// Copy every document, system record and the signing keys from one store to another
    /// (SQLite ⇄ PostgreSQL), then verify that the target matches; tokens issued before still
    /// verify after. Stop the nodes writing to the source first. A
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
    /// Check the data directory's database for damage (SQLite's integrity check). Works while
    /// the server runs (it reads one snapshot). Exit 0 sound, 1 damaged, 2 cannot check.
    Check {
        #[command(flatten)]
        config: ConfigArgs,
        /// Only SQLite's quick check (pages and B-trees, not index contents): faster.
        #[arg(long)]
        quick: bool,
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
enum AdminKeyCommand {
    /// Make a new admin key, print it once and replace the stored hash: the old key stops
    /// working at once on every node. Needs the store (with SQLite, stop the server first: it
    /// holds the data directory). Refused when admin_key is set in the configuration.
    Reset {
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Compile a rules file and report every error with line:column and a caret.
    /// Exit 0 when it compiles, 1 when it does not.
    Check {
        /// The Firestore rules file.
        #[arg(value_name = "RULES")]
        file: PathBuf,
    },
    /// Run test cases (YAML or JSON: `cases: [{name, auth, method, path, existing, data, query,
    /// expect}]`) against a rules file; prints each failure with its explanation, then the
    /// coverage of every allow statement. Exit 0 when all pass, 1 otherwise.
    Test {
        /// The Firestore rules file.
        #[arg(value_name = "RULES")]
        rules: PathBuf,
        /// The test cases file (YAML or JSON).
        #[arg(value_name = "CASES")]
        cases: PathBuf,
    },
    /// Store a rules file as the next version in the database and put it in force (every node
    /// follows within seconds). With SQLite, stop the server first or use PUT /v1/admin/rules.
    Set {
        #[command(flatten)]
        config: ConfigArgs,
        /// The Firestore rules file.
        #[arg(value_name = "RULES")]
        file: PathBuf,
    },
    /// List the rules versions stored in the database, newest first. Safe while the server
    /// runs.
    Versions {
        #[command(flatten)]
        config: ConfigArgs,
        /// At most this many versions.
        #[arg(long, value_name = "N", default_value_t = 20,
              value_parser = clap::value_parser!(u64).range(1..=100))]
        limit: u64,
    },
    /// Print the source of one stored rules version. Safe while the server runs.
    Get {
        #[command(flatten)]
        config: ConfigArgs,
        /// The version number (see `claimdb rules versions`).
        #[arg(value_name = "VERSION")]
        version: u64,
    },
    /// Put an earlier stored version back in force, as a new version. With SQLite, stop the
    /// server first or use POST /v1/admin/rules/rollback.
    Rollback {
        #[command(flatten)]
        config: ConfigArgs,
        /// The version to go back to.
        #[arg(value_name = "VERSION")]
        version: u64,
    },
}

fn main() -> ExitCode {
    permissions::restrict_umask();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            config,
            listen,
            rules,
        } => serve::run(&config, listen, rules),
        Command::Emulator {
            listen,
            project_id,
            rules,
            data_dir,
            force,
        } => emulator::run(emulator::Args {
            listen,
            project_id,
            rules,
            data_dir,
            force,
        }),
        Command::Doctor { config } => doctor::run(&config),
        Command::AdminKey(AdminKeyCommand::Reset { config }) => admin_key::reset(&config),
        Command::Export { config, output } => export::run(&config, output.as_deref()),
        Command::Import {
            config,
            input,
            merge,
        } => import::run(&config, &input, merge),
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
        Command::Check { config, quick } => check::run(&config, quick),
        Command::Rules(RulesCommand::Check { file }) => rules::check(&file),
        Command::Rules(RulesCommand::Test { rules, cases }) => rules::test(&rules, &cases),
        Command::Rules(RulesCommand::Set { config, file }) => rules_versions::set(&config, &file),
        Command::Rules(RulesCommand::Versions { config, limit }) => {
            rules_versions::list(&config, usize::try_from(limit).unwrap_or(20))
        }
        Command::Rules(RulesCommand::Get { config, version }) => {
            rules_versions::get(&config, version)
        }
        Command::Rules(RulesCommand::Rollback { config, version }) => {
            rules_versions::rollback(&config, version)
        }
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
        self.load_with(config::Overrides {
            listen,
            ..config::Overrides::default()
        })
    }

    /// Loads the configuration with command-line overrides (the data directory is this
    /// struct's), warning on stderr about `CLAIMDB_*` variables that set nothing.
    fn load_with(&self, overrides: config::Overrides) -> anyhow::Result<config::Config> {
        for warning in config::unknown_env_vars(std::env::vars().map(|(k, _)| k)) {
            eprintln!("claimdb: warning: {warning}");
        }
        config::Config::load(
            self.config.as_deref(),
            |k| std::env::var(k).ok(),
            &config::Overrides {
                data_dir: self.data_dir.clone(),
                ..overrides
            },
        )
    }
}

/// How the operator runs this binary again, for hints printed to them: `claimdb` when that is
/// what the `PATH` finds, else the path they used (`target/release/claimdb`).
fn self_command() -> String {
    let Ok(exe) = std::env::current_exe() else {
        return "claimdb".into();
    };
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            std::fs::canonicalize(dir.join("claimdb"))
                .is_ok_and(|p| std::fs::canonicalize(&exe).is_ok_and(|e| e == p))
        })
    });
    if on_path {
        return "claimdb".into();
    }
    let shown = std::env::current_dir()
        .ok()
        .and_then(|cwd| exe.strip_prefix(cwd).ok().map(std::path::Path::to_path_buf))
        .unwrap_or(exe);
    shown.display().to_string()
}

/// A multi-threaded runtime for the commands that need one.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
