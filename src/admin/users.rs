//! `user create | reset-password | deactivate | list`.

use super::cli::UserCommand;
use super::data_dir::{self, Missing};
use crate::config::Settings;
use crate::service::Service;
use std::io::BufRead;

/// Characters of a generated password (A-Za-z0-9: about 119 bits).
const GENERATED_PASSWORD_LEN: usize = 20;

/// The first line of standard input, without its line ending; never empty.
fn password_from_stdin() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err("standard input held no password (an empty first line)".into());
    }
    Ok(password)
}

fn yes_no(flag: bool) -> &'static str {
    if flag {
        "yes"
    } else {
        "no"
    }
}

/// Runs a `user` subcommand.
pub async fn run(command: UserCommand, config: &Settings) -> Result<(), String> {
    match command {
        UserCommand::Create {
            name,
            password_stdin,
            admin,
        } => {
            let service = data_dir::open(config, Missing::Create)?;
            let (password, generated) = match password_stdin {
                true => (password_from_stdin()?, false),
                false => (crate::service::random_string(GENERATED_PASSWORD_LEN), true),
            };
            let user = service
                .create_account(&name, &password, admin)
                .await
                .map_err(|e| e.message)?;
            println!("created {user}{}", if admin { " (admin)" } else { "" });
            if generated {
                println!("password: {password}");
            }
            finish(&service)
        }
        UserCommand::ResetPassword { name, keep_sessions } => {
            let service = data_dir::open(config, Missing::Refuse)?;
            let password = password_from_stdin()?;
            let user = service
                .reset_password(&name, &password, !keep_sessions)
                .await
                .map_err(|e| e.message)?;
            let sessions = if keep_sessions {
                "sessions kept"
            } else {
                "every session ended"
            };
            println!("password of {user} reset; {sessions}");
            finish(&service)
        }
        UserCommand::Deactivate { name } => {
            let service = data_dir::open(config, Missing::Refuse)?;
            let done = service.deactivate_account(&name).await.map_err(|e| e.message)?;
            println!("deactivated {}; every token revoked", done.user);
            for room in &done.left {
                println!("left {room}");
            }
            finish(&service)?;
            if done.failed.is_empty() {
                return Ok(());
            }
            let failed: Vec<String> = done.failed.iter().map(|(r, e)| format!("{r}: {}", e.message)).collect();
            Err(format!(
                "the account is deactivated, but leaving these rooms failed (run deactivate again to retry): {}",
                failed.join("; ")
            ))
        }
        UserCommand::List => {
            let service = data_dir::open(config, Missing::Refuse)?;
            println!("USER\tADMIN\tDEACTIVATED");
            for account in service.account_list().await.map_err(|e| e.message)? {
                println!(
                    "{}\t{}\t{}",
                    account.user,
                    yes_no(account.flags.admin),
                    yes_no(account.flags.deactivated)
                );
            }
            Ok(())
        }
    }
}

/// Every write of an admin command is durable when it returns; flushing
/// once more before exit costs nothing and says so loudly if the disk fails.
pub(super) fn finish(service: &Service) -> Result<(), String> {
    service.flush().map_err(|e| e.to_string())
}
