//! The partner's server of a test that runs on both OpenSSH sshd and vsftpd (explicit
//! FTPS): one test body, expanded per server by the module's `on_both_servers!`.

use std::path::Path;
use std::sync::Arc;

use wharf::config::flow::FtpTls;
use wharf::endpoint::DynEndpoint;
use wharf::endpoint::ftp::FtpEndpoint;
use wharf::endpoint::sftp::SftpEndpoint;

use super::ftpd::Ftpd;
use super::sshd::Sshd;

/// The partner's server.
pub enum Partner {
    Sftp(Sshd),
    Ftp(Ftpd),
}

impl Partner {
    pub fn sftp() -> Option<Partner> {
        Sshd::start().map(Partner::Sftp)
    }

    pub fn ftp() -> Option<Partner> {
        Ftpd::vsftpd().map(Partner::Ftp)
    }

    /// pure-ftpd (explicit FTPS), which lists with `MLSD` where vsftpd has `LIST` (and `MDTM`).
    pub fn pure_ftp() -> Option<Partner> {
        Ftpd::pure_ftpd().map(Partner::Ftp)
    }

    pub fn data_dir(&self) -> &Path {
        match self {
            Partner::Sftp(s) => s.data_dir(),
            Partner::Ftp(f) => f.data_dir(),
        }
    }

    pub fn yaml(&self) -> String {
        match self {
            Partner::Sftp(s) => s.endpoint_yaml(4),
            Partner::Ftp(f) => f.endpoint_yaml(FtpTls::Explicit, 4),
        }
    }

    pub fn give_to_user(&self, p: &Path) {
        match self {
            Partner::Sftp(s) => s.give_to_user(p),
            Partner::Ftp(f) => f.give_to_user(p),
        }
    }

    /// A second, independent connection to the server, to look at it while wharf works.
    pub async fn connect(&self) -> DynEndpoint {
        match self {
            Partner::Sftp(s) => {
                let ep = SftpEndpoint::new(s.sftp_spec(s.password_auth()));
                ep.connect_now().await.expect("second SFTP connection");
                Arc::new(ep)
            }
            Partner::Ftp(f) => {
                let ep = FtpEndpoint::new(f.spec(FtpTls::Explicit));
                ep.connect_now().await.expect("second FTP connection");
                Arc::new(ep)
            }
        }
    }
}
