//! The commands of `ensemble-cli`, parsed and executed here so they can be tested.
//!
//! ```text
//! ls <path> [-w]                 children (sorted); -w leaves a child watch
//! get <path> [-w]                data and stat; -w leaves a data watch
//! stat <path> [-w]               stat (exists); -w leaves an exists watch
//! set <path> <data> [version]    setData
//! create [-e] [-s] [-c] [-t ttl_ms] <path> [data]
//!                                persistent by default; -e ephemeral, -s sequential,
//!                                -c container, -t TTL (persistent only)
//! delete <path> [version]        delete (version -1 = any)
//! sync <path>                    sync: later reads see every earlier committed write
//! watch <path> [-r] [count]      persistent (recursive with -r) watch; prints events
//! ruok | mntr | metrics          ask the admin port (given with -a host:port)
//! help | quit
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use datatree::{CreateMode, Stat};
use ensemble::{AddWatchMode, Error, Event, SessionEvent};

use crate::remote::RemoteClient;

/// One parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// getChildren.
    Ls {
        /// Node.
        path: String,
        /// Leave a watch.
        watch: bool,
    },
    /// getData.
    Get {
        /// Node.
        path: String,
        /// Leave a watch.
        watch: bool,
    },
    /// exists.
    Stat {
        /// Node.
        path: String,
        /// Leave a watch.
        watch: bool,
    },
    /// setData.
    Set {
        /// Node.
        path: String,
        /// New data.
        data: String,
        /// Expected version (-1 any).
        version: i32,
    },
    /// create.
    Create {
        /// Node (prefix when sequential).
        path: String,
        /// Data.
        data: String,
        /// Mode.
        mode: CreateMode,
        /// TTL for TTL modes.
        ttl_ms: i64,
    },
    /// delete.
    Delete {
        /// Node.
        path: String,
        /// Expected version (-1 any).
        version: i32,
    },
    /// sync.
    Sync {
        /// Path.
        path: String,
    },
    /// A persistent watch printing `count` events (0: until interrupted).
    Watch {
        /// Path.
        path: String,
        /// Recursive.
        recursive: bool,
        /// Events to print before returning (0: forever).
        count: u64,
    },
    /// An admin-port word (`ruok`, `mntr`, `metrics`).
    Admin(String),
    /// Help text.
    Help,
    /// Leave the prompt.
    Quit,
}

/// The help text.
pub const HELP: &str = "\
commands:
  ls <path> [-w]                  list children (-w: watch for child changes)
  get <path> [-w]                 show data and stat (-w: watch for data changes)
  stat <path> [-w]                show stat (-w: watch for create/delete/change)
  set <path> <data> [version]     replace data (version -1 = any)
  create [-e] [-s] [-c] [-t ttl] <path> [data]
                                  create a node: persistent by default, -e ephemeral,
                                  -s sequential, -c container, -t TTL in ms
  delete <path> [version]         delete a node (version -1 = any)
  sync <path>                     make later reads see every earlier write
  watch <path> [-r] [count]       print events of a persistent (-r: recursive) watch
  ruok | mntr | metrics           ask the admin port (-a host:port)
  help | quit
";

/// Splits a line into words; double quotes group words (`set /a \"two words\"`).
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut has = false;
    for ch in line.chars() {
        match ch {
            '"' => {
                in_quotes = !in_quotes;
                has = true;
            }
            c if c.is_whitespace() && !in_quotes => {
                if has {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            c => {
                cur.push(c);
                has = true;
            }
        }
    }
    if in_quotes {
        return Err("a quote is not closed".into());
    }
    if has {
        out.push(cur);
    }
    Ok(out)
}

fn need_path(words: &[String], i: usize, cmd: &str) -> Result<String, String> {
    let p = words
        .get(i)
        .ok_or_else(|| format!("`{cmd}` needs a path, for example `{cmd} /app`"))?;
    if !p.starts_with('/') {
        return Err(format!("paths start with '/', got {p:?}"));
    }
    Ok(p.clone())
}

fn version(words: &[String], i: usize) -> Result<i32, String> {
    match words.get(i) {
        None => Ok(-1),
        Some(v) => v
            .parse()
            .map_err(|_| format!("the version must be a number, got {v:?}")),
    }
}

impl Command {
    /// Parses one command line (already split into words).
    pub fn parse(words: &[String]) -> Result<Command, String> {
        let Some(cmd) = words.first().cloned() else {
            return Err("no command; type `help`".into());
        };
        // `-t` takes a value: take both out before looking at the other words.
        let mut words = words.to_vec();
        let mut ttl_arg = None;
        if let Some(i) = words.iter().position(|w| w == "-t") {
            if i + 1 >= words.len() {
                return Err("-t needs a positive TTL in milliseconds".into());
            }
            ttl_arg = Some(words.remove(i + 1));
            words.remove(i);
        }
        let flags: Vec<&str> = words[1..]
            .iter()
            .map(String::as_str)
            .filter(|w| w.starts_with('-') && w.len() == 2)
            .collect();
        let rest: Vec<String> = words[1..]
            .iter()
            .filter(|w| !(w.starts_with('-') && w.len() == 2))
            .cloned()
            .collect();
        let mut args = vec![cmd.clone()];
        args.extend(rest);
        let watch = flags.contains(&"-w");
        Ok(match cmd.as_str() {
            "ls" => Command::Ls {
                path: need_path(&args, 1, "ls")?,
                watch,
            },
            "get" => Command::Get {
                path: need_path(&args, 1, "get")?,
                watch,
            },
            "stat" => Command::Stat {
                path: need_path(&args, 1, "stat")?,
                watch,
            },
            "set" => Command::Set {
                path: need_path(&args, 1, "set")?,
                data: args
                    .get(2)
                    .cloned()
                    .ok_or("`set` needs data, for example `set /app hello`")?,
                version: version(&args, 3)?,
            },
            "create" => {
                let ttl_ms = match &ttl_arg {
                    Some(v) => v
                        .parse::<i64>()
                        .ok()
                        .filter(|v| *v > 0)
                        .ok_or("-t needs a positive TTL in milliseconds")?,
                    None => 0,
                };
                let (e, s, c) = (
                    flags.contains(&"-e"),
                    flags.contains(&"-s"),
                    flags.contains(&"-c"),
                );
                let mode = match (e, s, c, ttl_ms > 0) {
                    (false, false, false, false) => CreateMode::Persistent,
                    (true, false, false, false) => CreateMode::Ephemeral,
                    (false, true, false, false) => CreateMode::PersistentSequential,
                    (true, true, false, false) => CreateMode::EphemeralSequential,
                    (false, false, true, false) => CreateMode::Container,
                    (false, false, false, true) => CreateMode::PersistentWithTtl,
                    (false, true, false, true) => CreateMode::PersistentSequentialWithTtl,
                    _ => return Err(
                        "these create flags do not combine (-c and -t stand alone, -e has no TTL)"
                            .into(),
                    ),
                };
                Command::Create {
                    path: need_path(&args, 1, "create")?,
                    data: args.get(2).cloned().unwrap_or_default(),
                    mode,
                    ttl_ms,
                }
            }
            "delete" | "rm" => Command::Delete {
                path: need_path(&args, 1, "delete")?,
                version: version(&args, 2)?,
            },
            "sync" => Command::Sync {
                path: need_path(&args, 1, "sync")?,
            },
            "watch" => Command::Watch {
                path: need_path(&args, 1, "watch")?,
                recursive: flags.contains(&"-r"),
                count: match args.get(2) {
                    Some(c) => c
                        .parse()
                        .map_err(|_| format!("the count must be a number, got {c:?}"))?,
                    None => 0,
                },
            },
            "ruok" | "mntr" | "metrics" => Command::Admin(cmd.clone()),
            "help" | "?" => Command::Help,
            "quit" | "exit" => Command::Quit,
            other => return Err(format!("unknown command `{other}`; type `help`")),
        })
    }
}

/// An error in plain words.
pub fn plain(e: &Error) -> String {
    use datatree::Error as T;
    match e {
        Error::Tree(T::NoNode(p)) => format!("node does not exist: {p}"),
        Error::Tree(T::NodeExists(p)) => format!("node already exists: {p}"),
        Error::Tree(T::NotEmpty(p)) => format!("node has children, delete them first: {p}"),
        Error::Tree(T::BadVersion(p)) => {
            format!("version does not match (someone else changed it?): {p}")
        }
        Error::Tree(T::NoChildrenForEphemerals(p)) => {
            format!("ephemeral nodes cannot have children: {p}")
        }
        Error::Tree(T::NoAuth(p)) => format!("not allowed by the node's ACL: {p}"),
        Error::Tree(T::BadArguments(m)) => format!("invalid argument: {m}"),
        Error::ConnectionLoss => {
            "lost the connection to the server (the outcome of a write is unknown)".into()
        }
        Error::SessionExpired => "the session expired; reconnect".into(),
        Error::OperationTimeout => "no answer in time".into(),
        Error::Throttled(_) => "the server is busy; try again".into(),
        Error::NotServing(m) => format!("the server is not serving: {m}"),
        other => other.to_string(),
    }
}

/// Renders a Stat the way `zkCli` does.
pub fn render_stat(s: &Stat) -> String {
    format!(
        "cZxid = {:#x}\nctime = {}\nmZxid = {:#x}\nmtime = {}\npZxid = {:#x}\ncversion = {}\ndataVersion = {}\naclVersion = {}\nephemeralOwner = {:#x}\ndataLength = {}\nnumChildren = {}\n",
        s.czxid, s.ctime, s.mzxid, s.mtime, s.pzxid, s.cversion, s.version, s.aversion,
        s.ephemeral_owner, s.data_length, s.num_children
    )
}

/// Renders one event.
pub fn render_event(e: &Event) -> String {
    match e {
        Event::Watch(w) => format!(
            "WATCHER:: {:?} {} (zxid {:#x})",
            w.event_type, w.path, w.zxid
        ),
        Event::Session(s) => format!("SESSION:: {s:?}"),
        other => format!("{other:?}"),
    }
}

/// Asks an admin port one word and returns its answer.
pub fn ask_admin(addr: SocketAddr, word: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(format!("{word}\n").as_bytes())?;
    let mut out = String::new();
    s.take(16 * 1024 * 1024).read_to_string(&mut out)?;
    Ok(out)
}

/// Runs one command; returns the text to print or an error in plain words.
pub fn execute(
    cmd: &Command,
    client: Option<&RemoteClient>,
    admin: Option<SocketAddr>,
    out: &mut dyn Write,
) -> Result<(), String> {
    let need =
        || client.ok_or_else(|| "not connected to any server (use -s host:port)".to_string());
    let p = |e: Error| plain(&e);
    let w = |out: &mut dyn Write, s: &str| {
        let _ = out.write_all(s.as_bytes());
    };
    match cmd {
        Command::Ls { path, watch } => {
            let (children, _) = need()?.get_children(path, *watch).map_err(p)?;
            w(out, &format!("[{}]\n", children.join(", ")));
        }
        Command::Get { path, watch } => {
            let (data, stat) = need()?.get_data(path, *watch).map_err(p)?;
            w(
                out,
                &format!("{}\n{}", String::from_utf8_lossy(&data), render_stat(&stat)),
            );
        }
        Command::Stat { path, watch } => match need()?.exists(path, *watch).map_err(p)? {
            Some(s) => w(out, &render_stat(&s)),
            None => return Err(format!("node does not exist: {path}")),
        },
        Command::Set {
            path,
            data,
            version,
        } => {
            let s = need()?
                .set_data(path, data.clone().into_bytes(), *version)
                .map_err(p)?;
            w(out, &render_stat(&s));
        }
        Command::Create {
            path,
            data,
            mode,
            ttl_ms,
        } => {
            let (created, _) = need()?
                .create_full(
                    path,
                    data.clone().into_bytes(),
                    datatree::Acl::open_unsafe(),
                    *mode,
                    *ttl_ms,
                )
                .map_err(p)?;
            w(out, &format!("Created {created}\n"));
        }
        Command::Delete { path, version } => need()?.delete(path, *version).map_err(p)?,
        Command::Sync { path } => {
            need()?.sync(path).map_err(p)?;
            w(out, &format!("Synced {path}\n"));
        }
        Command::Watch {
            path,
            recursive,
            count,
        } => {
            let c = need()?;
            let mode = if *recursive {
                AddWatchMode::PersistentRecursive
            } else {
                AddWatchMode::Persistent
            };
            c.add_watch(path, mode).map_err(p)?;
            w(out, &format!("watching {path}\n"));
            let mut seen = 0u64;
            while *count == 0 || seen < *count {
                let Ok(e) = c.events().recv() else { break };
                w(out, &format!("{}\n", render_event(&e)));
                let _ = out.flush();
                if matches!(e, Event::Watch(_)) {
                    seen += 1;
                }
                if matches!(
                    e,
                    Event::Session(SessionEvent::Expired | SessionEvent::Closed)
                ) {
                    break;
                }
            }
        }
        Command::Admin(word) => {
            let a = admin.ok_or("give the admin port with -a host:port")?;
            let text =
                ask_admin(a, word).map_err(|e| format!("cannot reach the admin port {a}: {e}"))?;
            w(out, &text);
        }
        Command::Help => w(out, HELP),
        Command::Quit => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn parse(line: &str) -> Result<Command, String> {
        Command::parse(&split_words(line)?)
    }

    #[test]
    fn words_and_quotes() {
        assert_eq!(
            split_words(r#"set /a "two words""#).unwrap(),
            ["set", "/a", "two words"]
        );
        assert_eq!(split_words(r#"set /a """#).unwrap(), ["set", "/a", ""]);
        assert!(split_words(r#"set /a "open"#).is_err());
    }

    #[test]
    fn create_modes() {
        let mode = |l: &str| match parse(l).unwrap() {
            Command::Create { mode, .. } => mode,
            other => panic!("{other:?}"),
        };
        assert_eq!(mode("create /a x"), CreateMode::Persistent);
        assert_eq!(mode("create -e /a"), CreateMode::Ephemeral);
        assert_eq!(mode("create -s /a"), CreateMode::PersistentSequential);
        assert_eq!(mode("create -e -s /a"), CreateMode::EphemeralSequential);
        assert_eq!(mode("create -c /a"), CreateMode::Container);
        assert_eq!(mode("create -t 500 /a"), CreateMode::PersistentWithTtl);
        assert_eq!(
            mode("create -s -t 500 /a"),
            CreateMode::PersistentSequentialWithTtl
        );
        assert!(parse("create -e -t 5 /a").is_err());
        assert!(parse("create -t /a").is_err());
        match parse("create -t 500 /a 500").unwrap() {
            Command::Create {
                ttl_ms, path, data, ..
            } => {
                assert_eq!((ttl_ms, path.as_str(), data.as_str()), (500, "/a", "500"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_are_plain_words() {
        assert!(parse("ls").unwrap_err().contains("needs a path"));
        assert!(parse("ls app").unwrap_err().contains("start with '/'"));
        assert!(parse("frobnicate /")
            .unwrap_err()
            .contains("unknown command"));
        assert!(parse("delete /a x").unwrap_err().contains("number"));
        let e = Error::Tree(datatree::Error::NoNode("/a".into()));
        assert_eq!(plain(&e), "node does not exist: /a");
        let e = Error::ConnectionLoss;
        assert!(plain(&e).contains("lost the connection"));
        let mut out = Vec::new();
        let r = execute(&parse("ls /").unwrap(), None, None, &mut out);
        assert!(r.unwrap_err().contains("not connected"));
    }

    #[test]
    fn other_commands_parse() {
        assert_eq!(
            parse("ls -w /a").unwrap(),
            Command::Ls {
                path: "/a".into(),
                watch: true
            }
        );
        assert_eq!(
            parse("set /a hi 3").unwrap(),
            Command::Set {
                path: "/a".into(),
                data: "hi".into(),
                version: 3
            }
        );
        assert_eq!(
            parse("watch /a -r 2").unwrap(),
            Command::Watch {
                path: "/a".into(),
                recursive: true,
                count: 2
            }
        );
        assert_eq!(parse("mntr").unwrap(), Command::Admin("mntr".into()));
        assert_eq!(parse("quit").unwrap(), Command::Quit);
    }
}
