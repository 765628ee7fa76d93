//! `room list | show`.

use super::cli::RoomCommand;
use super::data_dir::{self, Missing};
use crate::config::Settings;
use crate::service::admin::RoomOverview;
use serde_json::json;

fn or_dash(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("-")
}

fn aliases(overview: &RoomOverview) -> String {
    if overview.aliases.is_empty() {
        "-".into()
    } else {
        overview.aliases.join(",")
    }
}

/// Runs a `room` subcommand.
pub async fn run(command: RoomCommand, config: &Settings) -> Result<(), String> {
    let service = data_dir::open(config, Missing::Refuse)?;
    match command {
        RoomCommand::List => {
            println!("ROOM\tNAME\tCANONICAL_ALIAS\tALIASES\tJOINED\tINVITED\tBANNED");
            for room in service.room_list().await.map_err(|e| e.message)? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    room.room,
                    or_dash(&room.name),
                    or_dash(&room.canonical_alias),
                    aliases(&room),
                    room.joined,
                    room.invited,
                    room.banned
                );
            }
        }
        RoomCommand::Show { room } => {
            let details = service.room_details(&room).await.map_err(|e| e.message)?;
            let o = &details.overview;
            println!("room: {}", o.room);
            println!("name: {}", or_dash(&o.name));
            println!("canonical alias: {}", or_dash(&o.canonical_alias));
            println!("aliases: {}", aliases(o));
            println!(
                "members: {} joined, {} invited, {} banned",
                o.joined, o.invited, o.banned
            );
            println!("state:");
            for event in &details.state {
                let line = json!({
                    "type": event.event_type,
                    "state_key": event.state_key,
                    "sender": event.sender,
                    "content": event.content,
                });
                println!("  {line}");
            }
            println!("membership:");
            for (user, membership) in &details.members {
                println!("  {user}\t{}", membership.as_str());
            }
        }
    }
    Ok(())
}
