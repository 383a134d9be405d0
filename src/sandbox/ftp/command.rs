//! One line of the FTP control connection, read into a [`Command`] (RFC 959, 2389, 2428,
//! 3659). Pure: no I/O, no session state.
//!
//! The verb is case-insensitive; the argument is everything after the first space, kept as it
//! is (file names may have spaces at either end). `LIST`/`NLST` options (`-a`, `-la`) are
//! dropped, since the sandbox always shows dot files and has no other options to offer.

/// A parsed control command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    User(String),
    Pass(String),
    Quit,
    Noop,
    Syst,
    Feat,
    /// `OPTS` with its argument (`UTF8 ON`).
    Opts(String),
    /// `TYPE A`/`TYPE I` (and `L 8`): the representation; transfers are binary whatever it is.
    Type(String),
    Mode(String),
    Stru(String),
    Pwd,
    Cwd(String),
    Cdup,
    Pasv,
    /// `EPSV`, or `EPSV 1`/`EPSV ALL`.
    Epsv(Option<String>),
    /// `PORT`/`EPRT`: active mode, which the sandbox does not offer.
    Active,
    /// `LIST [-opts] [path]`.
    List(Option<String>),
    Nlst(Option<String>),
    Mlsd(Option<String>),
    Mlst(Option<String>),
    Size(String),
    Mdtm(String),
    /// `MFMT YYYYMMDDHHMMSS path`.
    Mfmt(String),
    /// `REST offset`: where the next RETR or STOR starts.
    Rest(String),
    Retr(String),
    Stor(String),
    Appe(String),
    Dele(String),
    Mkd(String),
    Rmd(String),
    Rnfr(String),
    Rnto(String),
    Abor,
    /// `AUTH TLS`/`PBSZ`/`PROT`: TLS, which the sandbox does not offer.
    Tls,
    /// A verb that is known but needs an argument, sent without one.
    MissingArgument(String),
    /// Anything else (the verb, upper-cased).
    Unknown(String),
}

impl Command {
    /// Reads one line (without its line end).
    pub fn parse(line: &str) -> Command {
        let (verb, arg) = match line.split_once(' ') {
            Some((v, a)) => (v, Some(a)),
            None => (line, None),
        };
        let verb = verb.to_ascii_uppercase();
        let arg = arg.filter(|a| !a.is_empty()).map(str::to_string);
        let needs = |f: fn(String) -> Command| match &arg {
            Some(a) => f(a.clone()),
            None => Command::MissingArgument(verb.clone()),
        };
        match verb.as_str() {
            "USER" => needs(Command::User),
            // An empty password is a password.
            "PASS" => Command::Pass(arg.clone().unwrap_or_default()),
            "QUIT" => Command::Quit,
            "NOOP" => Command::Noop,
            "SYST" => Command::Syst,
            "FEAT" => Command::Feat,
            "OPTS" => needs(Command::Opts),
            "TYPE" => needs(Command::Type),
            "MODE" => needs(Command::Mode),
            "STRU" => needs(Command::Stru),
            "PWD" | "XPWD" => Command::Pwd,
            "CWD" | "XCWD" => needs(Command::Cwd),
            "CDUP" | "XCUP" => Command::Cdup,
            "PASV" => Command::Pasv,
            "EPSV" => Command::Epsv(arg),
            "PORT" | "EPRT" => Command::Active,
            "LIST" => Command::List(without_options(arg)),
            "NLST" => Command::Nlst(without_options(arg)),
            "MLSD" => Command::Mlsd(arg),
            "MLST" => Command::Mlst(arg),
            "SIZE" => needs(Command::Size),
            "MDTM" => needs(Command::Mdtm),
            "MFMT" => needs(Command::Mfmt),
            "REST" => needs(Command::Rest),
            "RETR" => needs(Command::Retr),
            "STOR" => needs(Command::Stor),
            "APPE" => needs(Command::Appe),
            "DELE" => needs(Command::Dele),
            "MKD" | "XMKD" => needs(Command::Mkd),
            "RMD" | "XRMD" => needs(Command::Rmd),
            "RNFR" => needs(Command::Rnfr),
            "RNTO" => needs(Command::Rnto),
            "ABOR" => Command::Abor,
            "AUTH" | "PBSZ" | "PROT" | "CCC" => Command::Tls,
            _ => Command::Unknown(verb),
        }
    }

    /// May be sent before logging in.
    pub fn before_login(&self) -> bool {
        matches!(
            self,
            Command::User(_)
                | Command::Pass(_)
                | Command::Quit
                | Command::Noop
                | Command::Syst
                | Command::Feat
                | Command::Opts(_)
                | Command::Tls
                | Command::MissingArgument(_)
                | Command::Unknown(_)
        )
    }
}

/// `LIST -la dir` → `dir`; `LIST -a` → none. A lone `-…` word is an option, as `ls` reads it.
fn without_options(arg: Option<String>) -> Option<String> {
    let mut rest = arg?;
    while rest.starts_with('-') {
        rest = match rest.split_once(' ') {
            Some((_, r)) => r.to_string(),
            None => return None,
        };
    }
    Some(rest).filter(|r| !r.is_empty())
}

/// The `REST` argument: a byte offset.
pub fn parse_offset(arg: &str) -> Option<u64> {
    arg.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_are_case_insensitive_and_arguments_kept_whole() {
        assert_eq!(Command::parse("user sandbox"), Command::User("sandbox".into()));
        assert_eq!(Command::parse("RETR  two spaces .csv "), Command::Retr(" two spaces .csv ".into()));
        assert_eq!(Command::parse("STOR /in/a b.csv"), Command::Stor("/in/a b.csv".into()));
        assert_eq!(Command::parse("PASS"), Command::Pass(String::new()));
        assert_eq!(Command::parse("xpwd"), Command::Pwd);
        assert_eq!(Command::parse("EPSV ALL"), Command::Epsv(Some("ALL".into())));
        assert_eq!(Command::parse("EPRT |1|127.0.0.1|5282|"), Command::Active);
        assert_eq!(Command::parse("AUTH TLS"), Command::Tls);
        assert_eq!(Command::parse("SITE CHMOD 600 x"), Command::Unknown("SITE".into()));
    }

    #[test]
    fn a_missing_argument_is_its_own_command() {
        assert_eq!(Command::parse("RETR"), Command::MissingArgument("RETR".into()));
        assert_eq!(Command::parse("DELE "), Command::MissingArgument("DELE".into()));
        assert_eq!(Command::parse("MLSD"), Command::Mlsd(None));
    }

    #[test]
    fn list_options_are_dropped() {
        assert_eq!(Command::parse("LIST -a"), Command::List(None));
        assert_eq!(Command::parse("LIST -la /in"), Command::List(Some("/in".into())));
        assert_eq!(Command::parse("LIST -a -l in dir"), Command::List(Some("in dir".into())));
        assert_eq!(Command::parse("LIST in"), Command::List(Some("in".into())));
        assert_eq!(Command::parse("NLST"), Command::Nlst(None));
    }

    #[test]
    fn only_the_greeting_commands_come_before_login() {
        assert!(Command::parse("FEAT").before_login());
        assert!(Command::parse("AUTH TLS").before_login());
        assert!(!Command::parse("RETR x").before_login());
        assert!(!Command::parse("CWD /").before_login());
        assert_eq!(parse_offset("1024"), Some(1024));
        assert_eq!(parse_offset("-1"), None);
    }
}
