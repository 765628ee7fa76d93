//! The generated `Api` trait, implemented thinly: parse identifiers at the
//! edge, call one domain function, map its result onto the response enum.

use super::error::{respond, ServiceError, ServiceResult};
use super::membership::Action;
use super::messages::{limit_of, Direction};
use super::registration::{RegisterOutcome, Registration, DUMMY_STAGE};
use super::rooms::{Preset, RoomSpec};
use super::state::MemberFilter;
use super::sync::{client_event, DEFAULT_TIMELINE_LIMIT};
use super::third_party::{invite_form, InviteForm};
use super::third_party_openid::LIFETIME as OPENID_LIFETIME;
use super::{json_object, Service};
use crate::caller::ClientAddr;
use crate::generated::api::*;
use crate::generated::models;
use crate::ids::{IdError, RoomAliasId, RoomId, RoomOrAlias, UserId};
use serde_json::json;
use swagger::auth::{AuthData, Authorization};
use swagger::{ApiError, Has};

/// The spec versions whose endpoints we serve, as far as room membership,
/// sync and messages go. v1.4 and later would make clients use thread and
/// private-receipt endpoints we do not have; matrix-js-sdk needs at least v1.1.
pub const SPEC_VERSIONS: &[&str] = &["r0.0.1", "r0.5.0", "r0.6.0", "r0.6.1", "v1.1", "v1.2", "v1.3"];

fn invalid(what: &str) -> impl Fn(IdError) -> ServiceError + '_ {
    move |e| ServiceError::invalid_param(format!("{what}: {e}"))
}

/// The authenticated user; the edge only calls auth-requiring operations with one.
fn sender<C: Has<Option<Authorization>>>(context: &C) -> ServiceResult<UserId> {
    let auth = Has::<Option<Authorization>>::get(context)
        .as_ref()
        .ok_or_else(|| ServiceError::new(401, "M_MISSING_TOKEN", "Missing access token"))?;
    UserId::parse(&auth.subject).map_err(ServiceError::internal)
}

/// Where the request came from, when it came over TCP.
fn client_addr<C: Has<Option<ClientAddr>>>(context: &C) -> Option<ClientAddr> {
    *Has::<Option<ClientAddr>>::get(context)
}

fn room_id(raw: &str) -> ServiceResult<RoomId> {
    RoomId::parse(raw).map_err(invalid("roomId"))
}

impl Service {
    async fn membership_op(
        &self,
        sender: ServiceResult<UserId>,
        room: &str,
        target: Option<&str>,
        action: Action,
        reason: Option<String>,
    ) -> ServiceResult<()> {
        let sender = sender?;
        let room = room_id(room)?;
        let target = match target {
            Some(t) => UserId::parse(t).map_err(invalid("user_id"))?,
            None => sender.clone(),
        };
        self.change_membership(&room, &sender, &target, action, reason).await
    }

    async fn register_op(
        &self,
        kind: Option<String>,
        body: Option<models::RegisterRequest>,
        client: Option<ClientAddr>,
    ) -> ServiceResult<RegisterResponse> {
        if kind.as_deref().is_some_and(|k| k != "user") {
            return Err(ServiceError::new(
                403,
                "M_GUEST_ACCESS_FORBIDDEN",
                "Guest registration is not offered",
            ));
        }
        let body = body.unwrap_or(models::RegisterRequest {
            username: None,
            password: None,
            device_id: None,
            initial_device_display_name: None,
            inhibit_login: None,
            auth: None,
        });
        let reg = Registration {
            username: body.username,
            password: body.password,
            device_id: body.device_id,
            inhibit_login: body.inhibit_login.unwrap_or(false),
            auth: body.auth.map(|a| (a.r#type, a.session)),
        };
        Ok(match self.register(reg, client).await? {
            RegisterOutcome::NeedsAuth { session } => RegisterResponse::Unauthorized(models::UserInteractiveAuth {
                flows: vec![models::AuthFlow {
                    stages: vec![DUMMY_STAGE.to_string()],
                }],
                params: Some(models::JsonObject::new()),
                session: Some(session),
                completed: None,
                errcode: None,
                error: None,
            }),
            RegisterOutcome::Registered { user_id, session } => RegisterResponse::Ok(models::RegisterResponse {
                user_id: user_id.to_string(),
                access_token: session.as_ref().map(|s| s.access_token.clone()),
                device_id: session.map(|s| s.device_id),
                home_server: Some(self.server_name().to_string()),
            }),
        })
    }

    async fn create_room_op(
        &self,
        sender: ServiceResult<UserId>,
        body: models::CreateRoomRequest,
    ) -> ServiceResult<models::CreateRoomOk> {
        let sender = sender?;
        let invite = body
            .invite
            .unwrap_or_default()
            .iter()
            .map(|u| UserId::parse(u).map_err(invalid("invite")))
            .collect::<ServiceResult<Vec<_>>>()?;
        let spec = RoomSpec {
            preset: body.preset.map(|p| match p {
                models::CreateRoomRequestPreset::PrivateChat => Preset::PrivateChat,
                models::CreateRoomRequestPreset::PublicChat => Preset::PublicChat,
                models::CreateRoomRequestPreset::TrustedPrivateChat => Preset::TrustedPrivateChat,
            }),
            public: body.visibility == Some(models::CreateRoomRequestVisibility::Public),
            alias_localpart: body.room_alias_name,
            name: body.name,
            topic: body.topic,
            invite,
            power_level_override: body.power_level_content_override,
            initial_state: body
                .initial_state
                .unwrap_or_default()
                .into_iter()
                .map(|s| {
                    (
                        s.r#type,
                        s.state_key.unwrap_or_default(),
                        serde_json::Value::Object(s.content),
                    )
                })
                .collect(),
            creation_content: body.creation_content,
            is_direct: body.is_direct.unwrap_or(false),
            room_version: body.room_version,
        };
        let created = self.create_room(&sender, spec).await?;
        Ok(models::CreateRoomOk {
            room_id: created.room_id.to_string(),
            room_alias: created.alias.map(|a| a.to_string()),
        })
    }

    async fn set_state_op(
        &self,
        sender: ServiceResult<UserId>,
        room: &str,
        event_type: &str,
        state_key: &str,
        body: models::JsonObject,
    ) -> ServiceResult<models::EventIdResponse> {
        let sender = sender?;
        let room = room_id(room)?;
        let event_id = self.set_state(&room, &sender, event_type, state_key, body).await?;
        Ok(models::EventIdResponse { event_id })
    }

    async fn account_data_op(
        &self,
        sender: ServiceResult<UserId>,
        user: &str,
        room: Option<&str>,
        event_type: &str,
    ) -> ServiceResult<serde_json::Value> {
        let sender = sender?;
        let user = UserId::parse(user).map_err(invalid("userId"))?;
        let room = room.map(room_id).transpose()?;
        self.account_data(&sender, &user, room.as_ref(), event_type).await
    }

    async fn set_account_data_op(
        &self,
        sender: ServiceResult<UserId>,
        user: &str,
        room: Option<&str>,
        event_type: &str,
        body: models::JsonObject,
    ) -> ServiceResult<()> {
        let sender = sender?;
        let user = UserId::parse(user).map_err(invalid("userId"))?;
        let room = room.map(room_id).transpose()?;
        self.set_account_data(&sender, &user, room.as_ref(), event_type, body)
            .await
    }

    async fn get_state_op(
        &self,
        sender: ServiceResult<UserId>,
        room: &str,
        event_type: &str,
        state_key: &str,
    ) -> ServiceResult<models::JsonObject> {
        let sender = sender?;
        Ok(json_object(
            self.state_content(&room_id(room)?, &sender, event_type, state_key)
                .await?,
        ))
    }
}

#[async_trait::async_trait]
impl<C> Api<C> for Service
where
    C: Has<Option<Authorization>> + Has<Option<AuthData>> + Has<Option<ClientAddr>> + Send + Sync,
{
    async fn register(
        &self,
        kind: Option<String>,
        body: Option<models::RegisterRequest>,
        context: &C,
    ) -> Result<RegisterResponse, ApiError> {
        respond(
            "register",
            self.register_op(kind, body, client_addr(context)).await,
            RegisterResponse::from_error,
        )
    }

    async fn get_login_flows(&self, _context: &C) -> Result<GetLoginFlowsResponse, ApiError> {
        Ok(GetLoginFlowsResponse::Ok(models::GetLoginFlowsOk {
            flows: vec![models::LoginFlow {
                r#type: "m.login.password".into(),
            }],
        }))
    }

    async fn login(&self, body: models::LoginRequest, context: &C) -> Result<LoginResponse, ApiError> {
        let result = async {
            if body.r#type != "m.login.password" {
                return Err(ServiceError::new(
                    400,
                    "M_UNKNOWN",
                    format!("Login type {:?} is not supported", body.r#type),
                ));
            }
            let user = body
                .identifier
                .and_then(|i| i.user)
                .or(body.user)
                .ok_or_else(|| ServiceError::new(400, "M_MISSING_PARAM", "identifier.user is required"))?;
            let session = self
                .login(
                    &user,
                    body.password.as_deref().unwrap_or(""),
                    body.device_id,
                    client_addr(context),
                )
                .await?;
            Ok(models::LoginResponse {
                user_id: session.user_id.to_string(),
                access_token: session.access_token,
                device_id: session.device_id,
                home_server: Some(self.server_name().to_string()),
            })
        }
        .await;
        respond("login", result.map(LoginResponse::Ok), LoginResponse::from_error)
    }

    async fn logout(&self, context: &C) -> Result<LogoutResponse, ApiError> {
        let result = async {
            let caller = self.caller(Has::<Option<AuthData>>::get(context).as_ref()).await?;
            self.logout(&caller).await
        }
        .await;
        respond(
            "logout",
            result.map(|_| LogoutResponse::Ok(json_object(json!({})))),
            LogoutResponse::from_error,
        )
    }

    async fn whoami(&self, context: &C) -> Result<WhoamiResponse, ApiError> {
        let result = async {
            let caller = self.caller(Has::<Option<AuthData>>::get(context).as_ref()).await?;
            Ok(WhoamiResponse::Ok(models::WhoamiOk {
                user_id: caller.user.to_string(),
                device_id: Some(caller.device_id),
                is_guest: Some(false),
            }))
        }
        .await;
        respond("whoami", result, WhoamiResponse::from_error)
    }

    async fn get_room_alias(&self, room_alias: String, _context: &C) -> Result<GetRoomAliasResponse, ApiError> {
        let result = async {
            let alias = RoomAliasId::parse(&room_alias).map_err(invalid("roomAlias"))?;
            let room = self.get_alias(&alias).await?;
            Ok(GetRoomAliasResponse::Ok(models::GetRoomAliasOk {
                room_id: room.to_string(),
                servers: vec![self.server_name().to_string()],
            }))
        }
        .await;
        respond("get_room_alias", result, GetRoomAliasResponse::from_error)
    }

    async fn set_room_alias(
        &self,
        room_alias: String,
        body: models::SetRoomAliasBody,
        context: &C,
    ) -> Result<SetRoomAliasResponse, ApiError> {
        let result = async {
            let user = sender(context)?;
            let alias = RoomAliasId::parse(&room_alias).map_err(invalid("roomAlias"))?;
            let room = RoomId::parse(&body.room_id).map_err(invalid("room_id"))?;
            self.set_alias(&user, &alias, &room).await
        }
        .await;
        respond(
            "set_room_alias",
            result.map(|_| SetRoomAliasResponse::Ok(json_object(json!({})))),
            SetRoomAliasResponse::from_error,
        )
    }

    async fn delete_room_alias(&self, room_alias: String, context: &C) -> Result<DeleteRoomAliasResponse, ApiError> {
        let result = async {
            let user = sender(context)?;
            let alias = RoomAliasId::parse(&room_alias).map_err(invalid("roomAlias"))?;
            self.delete_alias(&user, &alias).await
        }
        .await;
        respond(
            "delete_room_alias",
            result.map(|_| DeleteRoomAliasResponse::Ok(json_object(json!({})))),
            DeleteRoomAliasResponse::from_error,
        )
    }

    async fn get_versions(&self, _context: &C) -> Result<GetVersionsResponse, ApiError> {
        Ok(GetVersionsResponse::Ok(models::GetVersionsOk {
            versions: SPEC_VERSIONS.iter().map(|v| v.to_string()).collect(),
            unstable_features: Some(Default::default()),
        }))
    }

    async fn post_rooms_room_id_join(
        &self,
        room_id_or_alias: String,
        body: Option<models::PostRoomsRoomIdJoinBody>,
        context: &C,
    ) -> Result<PostRoomsRoomIdJoinResponse, ApiError> {
        let result = async {
            let user = sender(context)?;
            let target = RoomOrAlias::parse(&room_id_or_alias).map_err(invalid("roomId"))?;
            let room = self.resolve_room(&target).await?;
            self.join(&room, &user, body.and_then(|b| b.reason)).await?;
            Ok(PostRoomsRoomIdJoinResponse::Ok(models::PostRoomsRoomIdJoinOk {
                room_id: room.to_string(),
            }))
        }
        .await;
        respond(
            "post_rooms_room_id_join",
            result,
            PostRoomsRoomIdJoinResponse::from_error,
        )
    }

    async fn knock_room(
        &self,
        room_id_or_alias: String,
        _via: Option<String>,
        _server_name: Option<String>,
        body: Option<models::KnockRoomBody>,
        context: &C,
    ) -> Result<KnockRoomResponse, ApiError> {
        let result = async {
            let user = sender(context)?;
            let target = RoomOrAlias::parse(&room_id_or_alias).map_err(invalid("roomIdOrAlias"))?;
            let room = self.resolve_room(&target).await?;
            self.change_membership(&room, &user, &user, Action::Knock, body.and_then(|b| b.reason))
                .await?;
            Ok(KnockRoomResponse::Ok(models::KnockRoomOk {
                room_id: room.to_string(),
            }))
        }
        .await;
        respond("knock_room", result, KnockRoomResponse::from_error)
    }

    async fn post_rooms_room_id_invite(
        &self,
        room_id: String,
        body: models::PostRoomsRoomIdInviteBody,
        context: &C,
    ) -> Result<PostRoomsRoomIdInviteResponse, ApiError> {
        let result = match invite_form(&body) {
            Ok(InviteForm::User(user_id)) => {
                self.membership_op(sender(context), &room_id, Some(&user_id), Action::Invite, body.reason)
                    .await
            }
            Ok(InviteForm::ThirdParty(address)) => {
                async {
                    let sender = sender(context)?;
                    let room = self::room_id(&room_id)?;
                    self.invite_by_third_party(&room, &sender, address).await
                }
                .await
            }
            Err(e) => Err(e),
        };
        respond(
            "post_rooms_room_id_invite",
            result.map(|_| PostRoomsRoomIdInviteResponse::Ok(json_object(json!({})))),
            PostRoomsRoomIdInviteResponse::from_error,
        )
    }

    async fn leave_room(
        &self,
        room_id: String,
        body: Option<models::LeaveRoomBody>,
        context: &C,
    ) -> Result<LeaveRoomResponse, ApiError> {
        let reason = body.and_then(|b| b.reason);
        let result = self
            .membership_op(sender(context), &room_id, None, Action::Leave, reason)
            .await;
        respond(
            "leave_room",
            result.map(|_| LeaveRoomResponse::Ok(json_object(json!({})))),
            LeaveRoomResponse::from_error,
        )
    }

    async fn kick(
        &self,
        room_id: String,
        body: models::MembershipChange,
        context: &C,
    ) -> Result<KickResponse, ApiError> {
        let result = self
            .membership_op(
                sender(context),
                &room_id,
                Some(&body.user_id),
                Action::Kick,
                body.reason,
            )
            .await;
        respond(
            "kick",
            result.map(|_| KickResponse::Ok(json_object(json!({})))),
            KickResponse::from_error,
        )
    }

    async fn ban(&self, room_id: String, body: models::MembershipChange, context: &C) -> Result<BanResponse, ApiError> {
        let result = self
            .membership_op(sender(context), &room_id, Some(&body.user_id), Action::Ban, body.reason)
            .await;
        respond(
            "ban",
            result.map(|_| BanResponse::Ok(json_object(json!({})))),
            BanResponse::from_error,
        )
    }

    async fn unban(
        &self,
        room_id: String,
        body: models::MembershipChange,
        context: &C,
    ) -> Result<UnbanResponse, ApiError> {
        let result = self
            .membership_op(
                sender(context),
                &room_id,
                Some(&body.user_id),
                Action::Unban,
                body.reason,
            )
            .await;
        respond(
            "unban",
            result.map(|_| UnbanResponse::Ok(json_object(json!({})))),
            UnbanResponse::from_error,
        )
    }

    async fn get_room_state(&self, room_id: String, context: &C) -> Result<GetRoomStateResponse, ApiError> {
        let result = async {
            let user = sender(context)?;
            let events = self.visible_state(&self::room_id(&room_id)?, &user).await?;
            Ok(GetRoomStateResponse::Ok(events.into_iter().map(client_event).collect()))
        }
        .await;
        respond("get_room_state", result, GetRoomStateResponse::from_error)
    }

    async fn get_room_state_event(
        &self,
        room_id: String,
        event_type: String,
        state_key: String,
        context: &C,
    ) -> Result<GetRoomStateEventResponse, ApiError> {
        let result = self
            .get_state_op(sender(context), &room_id, &event_type, &state_key)
            .await;
        respond(
            "get_room_state_event",
            result.map(GetRoomStateEventResponse::Ok),
            GetRoomStateEventResponse::from_error,
        )
    }

    async fn set_room_state_event(
        &self,
        room_id: String,
        event_type: String,
        state_key: String,
        body: models::JsonObject,
        context: &C,
    ) -> Result<SetRoomStateEventResponse, ApiError> {
        let result = self
            .set_state_op(sender(context), &room_id, &event_type, &state_key, body)
            .await;
        respond(
            "set_room_state_event",
            result.map(SetRoomStateEventResponse::Ok),
            SetRoomStateEventResponse::from_error,
        )
    }

    async fn get_room_state_event_empty_key(
        &self,
        room_id: String,
        event_type: String,
        context: &C,
    ) -> Result<GetRoomStateEventEmptyKeyResponse, ApiError> {
        let result = self.get_state_op(sender(context), &room_id, &event_type, "").await;
        respond(
            "get_room_state_event_empty_key",
            result.map(GetRoomStateEventEmptyKeyResponse::Ok),
            GetRoomStateEventEmptyKeyResponse::from_error,
        )
    }

    async fn set_room_state_event_empty_key(
        &self,
        room_id: String,
        event_type: String,
        body: models::JsonObject,
        context: &C,
    ) -> Result<SetRoomStateEventEmptyKeyResponse, ApiError> {
        let result = self
            .set_state_op(sender(context), &room_id, &event_type, "", body)
            .await;
        respond(
            "set_room_state_event_empty_key",
            result.map(SetRoomStateEventEmptyKeyResponse::Ok),
            SetRoomStateEventEmptyKeyResponse::from_error,
        )
    }

    async fn get_members(
        &self,
        room_id: String,
        at: Option<String>,
        membership: Option<String>,
        not_membership: Option<String>,
        context: &C,
    ) -> Result<GetMembersResponse, ApiError> {
        let result = async {
            let user = sender(context)?;
            let filter = MemberFilter {
                membership: membership.as_deref(),
                not_membership: not_membership.as_deref(),
            };
            let events = self
                .member_events(&self::room_id(&room_id)?, &user, at.as_deref(), filter)
                .await?;
            Ok(GetMembersResponse::Ok(models::GetMembersOk {
                chunk: events.into_iter().map(client_event).collect(),
            }))
        }
        .await;
        respond("get_members", result, GetMembersResponse::from_error)
    }

    async fn get_joined_members(&self, room_id: String, context: &C) -> Result<GetJoinedMembersResponse, ApiError> {
        let result = async {
            let user = sender(context)?;
            let events = self.joined_member_events(&self::room_id(&room_id)?, &user).await?;
            let joined = events
                .into_iter()
                .filter_map(|e| {
                    let name = e
                        .content
                        .get("displayname")
                        .and_then(|d| d.as_str())
                        .map(str::to_string);
                    let avatar = e.content.get("avatar_url").and_then(|d| d.as_str()).map(str::to_string);
                    Some((
                        e.state_key?,
                        models::RoomMember {
                            display_name: name,
                            avatar_url: avatar,
                        },
                    ))
                })
                .collect();
            Ok(GetJoinedMembersResponse::Ok(models::GetJoinedMembersOk { joined }))
        }
        .await;
        respond("get_joined_members", result, GetJoinedMembersResponse::from_error)
    }

    async fn get_joined_rooms(&self, context: &C) -> Result<GetJoinedRoomsResponse, ApiError> {
        let result = async {
            let rooms = self.joined_rooms(&sender(context)?).await?;
            Ok(GetJoinedRoomsResponse::Ok(models::GetJoinedRoomsOk {
                joined_rooms: rooms.iter().map(|r| r.to_string()).collect(),
            }))
        }
        .await;
        respond("get_joined_rooms", result, GetJoinedRoomsResponse::from_error)
    }

    async fn create_room(&self, body: models::CreateRoomRequest, context: &C) -> Result<CreateRoomResponse, ApiError> {
        let result = self.create_room_op(sender(context), body).await;
        respond(
            "create_room",
            result.map(CreateRoomResponse::Ok),
            CreateRoomResponse::from_error,
        )
    }

    // -- sync, messages and start-up endpoints (issue 4); the work is in sync.rs, messages.rs, client_config.rs.

    async fn initial_sync(&self, limit: Option<i64>, context: &C) -> Result<InitialSyncResponse, ApiError> {
        let result = async {
            let user = sender(context)?;
            self.initial_sync(&user, limit_of(limit, DEFAULT_TIMELINE_LIMIT)?).await
        }
        .await;
        respond(
            "initial_sync",
            result.map(InitialSyncResponse::Ok),
            InitialSyncResponse::from_error,
        )
    }

    async fn room_initial_sync(&self, room_id: String, context: &C) -> Result<RoomInitialSyncResponse, ApiError> {
        let result = async {
            let user = sender(context)?;
            self.room_initial_sync(&self::room_id(&room_id)?, &user).await
        }
        .await;
        respond(
            "room_initial_sync",
            result.map(RoomInitialSyncResponse::Ok),
            RoomInitialSyncResponse::from_error,
        )
    }

    async fn sync(
        &self,
        since: Option<String>,
        timeout: Option<i64>,
        filter: Option<String>,
        full_state: Option<bool>,
        _set_presence: Option<String>,
        context: &C,
    ) -> Result<SyncResponse, ApiError> {
        let result = async {
            let user = sender(context)?;
            let req = self
                .sync_request(&user, since.as_deref(), timeout, filter.as_deref(), full_state)
                .await?;
            self.sync(&user, &req).await
        }
        .await;
        respond("sync", result.map(SyncResponse::Ok), SyncResponse::from_error)
    }

    async fn send_message(
        &self,
        room_id: String,
        event_type: String,
        txn_id: String,
        body: models::JsonObject,
        context: &C,
    ) -> Result<SendMessageResponse, ApiError> {
        let result = async {
            let user = sender(context)?;
            let room = self::room_id(&room_id)?;
            let event_id = self.send_message(&room, &user, &event_type, &txn_id, body).await?;
            Ok(models::EventIdResponse { event_id })
        }
        .await;
        respond(
            "send_message",
            result.map(SendMessageResponse::Ok),
            SendMessageResponse::from_error,
        )
    }

    async fn get_room_events(
        &self,
        room_id: String,
        from: Option<String>,
        to: Option<String>,
        dir: String,
        limit: Option<i64>,
        _filter: Option<String>,
        context: &C,
    ) -> Result<GetRoomEventsResponse, ApiError> {
        let result = async {
            let user = sender(context)?;
            let dir = match dir.as_str() {
                "b" => Direction::Backward,
                "f" => Direction::Forward,
                other => {
                    return Err(ServiceError::invalid_param(format!(
                        "dir must be b or f, not {other:?}"
                    )))
                }
            };
            let page = self
                .room_messages(
                    &self::room_id(&room_id)?,
                    &user,
                    from.as_deref(),
                    to.as_deref(),
                    dir,
                    limit_of(limit, 10)?,
                )
                .await?;
            Ok(models::PaginationChunk {
                chunk: page.events.into_iter().map(client_event).collect(),
                start: page.start,
                end: page.end,
            })
        }
        .await;
        respond(
            "get_room_events",
            result.map(GetRoomEventsResponse::Ok),
            GetRoomEventsResponse::from_error,
        )
    }

    async fn define_filter(
        &self,
        user_id: String,
        body: models::JsonObject,
        context: &C,
    ) -> Result<DefineFilterResponse, ApiError> {
        let result = async {
            let sender = sender(context)?;
            let user = UserId::parse(&user_id).map_err(invalid("userId"))?;
            let filter_id = self
                .define_filter(&sender, &user, serde_json::Value::Object(body))
                .await?;
            Ok(models::DefineFilterOk { filter_id })
        }
        .await;
        respond(
            "define_filter",
            result.map(DefineFilterResponse::Ok),
            DefineFilterResponse::from_error,
        )
    }

    async fn get_filter(&self, user_id: String, filter_id: String, context: &C) -> Result<GetFilterResponse, ApiError> {
        let result = async {
            let sender = sender(context)?;
            let user = UserId::parse(&user_id).map_err(invalid("userId"))?;
            Ok(json_object(self.get_filter(&sender, &user, &filter_id).await?))
        }
        .await;
        respond(
            "get_filter",
            result.map(GetFilterResponse::Ok),
            GetFilterResponse::from_error,
        )
    }

    async fn get_profile(&self, user_id: String, _context: &C) -> Result<GetProfileResponse, ApiError> {
        let result = async {
            let user = UserId::parse(&user_id).map_err(invalid("userId"))?;
            let name = self.display_name(&user).await?;
            Ok(GetProfileResponse::Ok(models::GetProfileOk {
                displayname: Some(name),
                avatar_url: None,
            }))
        }
        .await;
        respond("get_profile", result, GetProfileResponse::from_error)
    }

    async fn get_display_name(&self, user_id: String, _context: &C) -> Result<GetDisplayNameResponse, ApiError> {
        let result = async {
            let user = UserId::parse(&user_id).map_err(invalid("userId"))?;
            let name = self.display_name(&user).await?;
            Ok(GetDisplayNameResponse::Ok(models::GetDisplayNameOk {
                displayname: Some(name),
            }))
        }
        .await;
        respond("get_display_name", result, GetDisplayNameResponse::from_error)
    }

    async fn set_display_name(
        &self,
        user_id: String,
        body: models::SetDisplayNameBody,
        context: &C,
    ) -> Result<SetDisplayNameResponse, ApiError> {
        let result = async {
            let sender = sender(context)?;
            let user = UserId::parse(&user_id).map_err(invalid("userId"))?;
            self.set_display_name(&sender, &user, body.displayname.as_deref()).await
        }
        .await;
        respond(
            "set_display_name",
            result.map(|_| SetDisplayNameResponse::Ok(json_object(json!({})))),
            SetDisplayNameResponse::from_error,
        )
    }

    async fn get_capabilities(&self, _context: &C) -> Result<GetCapabilitiesResponse, ApiError> {
        Ok(GetCapabilitiesResponse::Ok(models::GetCapabilitiesOk {
            capabilities: json_object(self.capabilities()),
        }))
    }

    async fn get_push_rules(&self, _context: &C) -> Result<GetPushRulesResponse, ApiError> {
        Ok(GetPushRulesResponse::Ok(models::GetPushRulesOk {
            global: json_object(self.push_rules()),
        }))
    }

    async fn admin_backup(&self, body: models::AdminBackupBody, context: &C) -> Result<AdminBackupResponse, ApiError> {
        let result = async {
            let written = self.backup(&sender(context)?, &body.dir).await?;
            Ok(AdminBackupResponse::Ok(models::AdminBackupOk {
                file: written.file.display().to_string(),
                stream_position: written.summary.stream_position as i64,
                records: written.summary.records as i64,
            }))
        }
        .await;
        respond("admin_backup", result, AdminBackupResponse::from_error)
    }

    async fn get_well_known(&self, _context: &C) -> Result<GetWellKnownResponse, ApiError> {
        Ok(GetWellKnownResponse::Ok(models::GetWellKnownOk {
            m_homeserver: json_object(self.well_known_homeserver()),
        }))
    }

    // -- account data and forgetting (issue 11); the work is in account_data.rs and forget.rs.

    async fn get_account_data(
        &self,
        user_id: String,
        r#type: String,
        context: &C,
    ) -> Result<GetAccountDataResponse, ApiError> {
        let result = self.account_data_op(sender(context), &user_id, None, &r#type).await;
        respond(
            "get_account_data",
            result.map(|c| GetAccountDataResponse::Ok(json_object(c))),
            GetAccountDataResponse::from_error,
        )
    }

    async fn set_account_data(
        &self,
        user_id: String,
        r#type: String,
        body: models::JsonObject,
        context: &C,
    ) -> Result<SetAccountDataResponse, ApiError> {
        let result = self
            .set_account_data_op(sender(context), &user_id, None, &r#type, body)
            .await;
        respond(
            "set_account_data",
            result.map(|_| SetAccountDataResponse::Ok(json_object(json!({})))),
            SetAccountDataResponse::from_error,
        )
    }

    async fn get_room_account_data(
        &self,
        user_id: String,
        room_id: String,
        r#type: String,
        context: &C,
    ) -> Result<GetRoomAccountDataResponse, ApiError> {
        let result = self
            .account_data_op(sender(context), &user_id, Some(&room_id), &r#type)
            .await;
        respond(
            "get_room_account_data",
            result.map(|c| GetRoomAccountDataResponse::Ok(json_object(c))),
            GetRoomAccountDataResponse::from_error,
        )
    }

    async fn set_room_account_data(
        &self,
        user_id: String,
        room_id: String,
        r#type: String,
        body: models::JsonObject,
        context: &C,
    ) -> Result<SetRoomAccountDataResponse, ApiError> {
        let result = self
            .set_account_data_op(sender(context), &user_id, Some(&room_id), &r#type, body)
            .await;
        respond(
            "set_room_account_data",
            result.map(|_| SetRoomAccountDataResponse::Ok(json_object(json!({})))),
            SetRoomAccountDataResponse::from_error,
        )
    }

    async fn forget_room(&self, room_id: String, context: &C) -> Result<ForgetRoomResponse, ApiError> {
        let result = async {
            let user = sender(context)?;
            self.forget_room(&user, &self::room_id(&room_id)?).await
        }
        .await;
        respond(
            "forget_room",
            result.map(|_| ForgetRoomResponse::Ok(json_object(json!({})))),
            ForgetRoomResponse::from_error,
        )
    }

    async fn get_health(&self, _context: &C) -> Result<GetHealthResponse, ApiError> {
        respond(
            "get_health",
            self.health().map(|()| {
                GetHealthResponse::Ok(models::GetHealthOk {
                    status: "ok".to_string(),
                })
            }),
            GetHealthResponse::from_error,
        )
    }

    async fn request_open_id_token(
        &self,
        user_id: String,
        _body: Option<models::JsonObject>,
        context: &C,
    ) -> Result<RequestOpenIdTokenResponse, ApiError> {
        let result = sender(context).and_then(|caller| {
            let user = UserId::parse(&user_id).map_err(invalid("userId"))?;
            self.request_openid_token(&caller, &user)
        });
        respond(
            "request_open_id_token",
            result.map(|token| {
                RequestOpenIdTokenResponse::Ok(models::RequestOpenIdTokenOk {
                    access_token: token,
                    token_type: models::RequestOpenIdTokenOkTokenType::Bearer,
                    matrix_server_name: self.server_name().to_string(),
                    expires_in: OPENID_LIFETIME.as_secs() as i64,
                })
            }),
            RequestOpenIdTokenResponse::from_error,
        )
    }

    async fn get_open_id_user_info(
        &self,
        access_token: String,
        _context: &C,
    ) -> Result<GetOpenIdUserInfoResponse, ApiError> {
        respond(
            "get_open_id_user_info",
            self.openid_user(&access_token)
                .map(|user| GetOpenIdUserInfoResponse::Ok(models::GetOpenIdUserInfoOk { sub: user.to_string() })),
            GetOpenIdUserInfoResponse::from_error,
        )
    }

    async fn on_bind_third_party_id(
        &self,
        body: models::ThirdPartyBind,
        _context: &C,
    ) -> Result<OnBindThirdPartyIdResponse, ApiError> {
        let result = self.on_third_party_bind(body).await;
        respond(
            "on_bind_third_party_id",
            result.map(|()| OnBindThirdPartyIdResponse::Ok(json_object(json!({})))),
            OnBindThirdPartyIdResponse::from_error,
        )
    }

    async fn on_bind_third_party_id_post(
        &self,
        body: models::ThirdPartyBind,
        _context: &C,
    ) -> Result<OnBindThirdPartyIdPostResponse, ApiError> {
        let result = self.on_third_party_bind(body).await;
        respond(
            "on_bind_third_party_id_post",
            result.map(|()| OnBindThirdPartyIdPostResponse::Ok(json_object(json!({})))),
            OnBindThirdPartyIdPostResponse::from_error,
        )
    }
}
