//! The agents' side of the chatbot: the tray of conversations handed to a person, reading one,
//! replying (through the same sender and reply rules as the bot), handing it back to the bot
//! or closing it; and the identity answers the bot checks, which the CRM provides.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

use cobro::chat::vulnerability::Sign;
use cobro::chat::{IdentityFacts, Mode, Reply};
use cobro::compliance::{agent_reply_time, debtor_policy, AgentReplyTime};
use cobro::domain::{ChannelKind, DebtorId, TenantId};
use cobro::events::{DomainEvent, HandoffClosed, HandoffReleased};
use cobro::http::{parse_json, Problem};
use cobro::outbound::{ReplyMessage, ReplyRef};
use cobro::ports::{Event, Outgoing};
use cobro::repo::{ChatReply, ReplyStatus, RepoError};

use crate::{id, Caller, CrmApi, Guards};

/// The agents' routes need the `agent` scope; identity answers come from the CRM's writes.
pub(crate) fn routes(r: Router<Arc<CrmApi>>, g: &Guards) -> Router<Arc<CrmApi>> {
    r.route("/v1/handoffs", get(list_handoffs).route_layer(g.agent()))
        .route(
            "/v1/conversations/{debtor}",
            get(conversation).route_layer(g.agent()),
        )
        .route(
            "/v1/conversations/{debtor}/replies",
            post(agent_reply).route_layer(g.agent()),
        )
        .route(
            "/v1/conversations/{debtor}/release",
            post(release).route_layer(g.agent()),
        )
        .route(
            "/v1/conversations/{debtor}/close",
            post(close).route_layer(g.agent()),
        )
        .route(
            "/v1/debtors/{id}/identity",
            put(put_identity).route_layer(g.write()),
        )
}

#[utoipa::path(get, path = "/v1/handoffs", tag = "conversations", summary = "Conversations handed to a person, oldest first",
    params(crate::paging::PageParams),
    responses((status = 200, body = Object, description = "`items` and `next_cursor`"), (status = 400, body = crate::openapi::ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = ["agent"])))]
pub(crate) async fn list_handoffs(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    page: crate::paging::PageRequest,
) -> Result<Response, Problem> {
    let (items, next) = s
        .store
        .open_handoffs(&caller.tenant, page.limit, page.cursor)
        .await
        .map_err(|e| match e {
            RepoError::Table(cobro::ports::TableError::Invalid(m)) => {
                Problem::invalid_field("cursor", m)
            }
            other => Problem::from(other),
        })?;
    Ok(Json(json!({ "items": items, "next_cursor": next })).into_response())
}

async fn debtor_of(
    s: &CrmApi,
    caller: &Caller,
    raw: String,
) -> Result<cobro::domain::Debtor, Problem> {
    let debtor = id(DebtorId::parse, raw, "debtor")?;
    s.store
        .debtor(&caller.tenant, &debtor)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no debtor `{debtor}`")))
}

#[utoipa::path(get, path = "/v1/conversations/{debtor}", tag = "conversations", summary = "A conversation: messages, who owns it, the bot's question, the vulnerability flag",
    params(("debtor" = String, Path, description = "the debtor's id in the CRM", pattern = r"^[A-Za-z0-9._:@-]{1,128}$")),
    responses((status = 200, body = Object), (status = 400, body = crate::openapi::ProblemDoc, content_type = "application/problem+json"), (status = 404, body = crate::openapi::ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = ["agent"])))]
pub(crate) async fn conversation(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    let debtor = debtor_of(&s, &caller, raw).await?;
    let messages = s
        .store
        .conversation(&caller.tenant, &debtor.id, 100)
        .await?;
    let (record, _) = s.store.chat_record(&caller.tenant, &debtor.id).await?;
    let handoff = s.store.handoff(&caller.tenant, &debtor.id).await?;
    Ok(Json(json!({
        "debtor": debtor.id,
        "owner": record.state.mode,
        "waiting_for": record.state.awaiting,
        "vulnerability": record.state.vulnerable,
        "language": record.state.language.unwrap_or(debtor.language),
        "handoff": handoff,
        "messages": messages,
    }))
    .into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AgentReply {
    text: String,
    agent: String,
    /// `whatsapp` (default), `sms` or `email`.
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^(whatsapp|sms|email)$")]
    channel: Option<ChannelKind>,
}

fn conflict(kind: &str, detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::CONFLICT, kind, detail)
}

#[utoipa::path(post, path = "/v1/conversations/{debtor}/replies", tag = "conversations", summary = "An agent's reply, sent under the reply rules",
    params(("debtor" = String, Path, description = "the debtor's id in the CRM", pattern = r"^[A-Za-z0-9._:@-]{1,128}$")), request_body = AgentReply,
    responses((status = 202, body = Object, description = "queued"), (status = 200, body = Object, description = "the same reply, already queued"), (status = 400, body = crate::openapi::ProblemDoc, content_type = "application/problem+json"), (status = 404, body = crate::openapi::ProblemDoc, content_type = "application/problem+json"), (status = 409, body = crate::openapi::ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = ["agent"])))]
pub(crate) async fn agent_reply(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let input: AgentReply = parse_json(&body)?;
    let text = input.text.trim();
    if text.is_empty() || text.chars().count() > 4096 {
        return Err(Problem::invalid_field("text", "is 1 to 4096 characters"));
    }
    let agent = input.agent.trim();
    if agent.is_empty() || agent.len() > 100 {
        return Err(Problem::invalid_field("agent", "is 1 to 100 characters"));
    }
    let debtor = debtor_of(&s, &caller, raw).await?;
    let (record, _) = s.store.chat_record(&caller.tenant, &debtor.id).await?;
    // A handoff can be open while the bot still holds the conversation (an accepted plan that
    // could not be built): the agent's reply takes it, below, once the reply is allowed.
    let open_handoff = match record.state.mode {
        Mode::Agent { .. } => None,
        Mode::Bot => match s.store.handoff(&caller.tenant, &debtor.id).await? {
            Some(h) => Some(h),
            None => {
                return Err(conflict(
                    "bot-owns-conversation",
                    "the bot owns this conversation; a person replies once it is handed off",
                ))
            }
        },
    };
    let channel = input.channel.unwrap_or(ChannelKind::Whatsapp);
    let now = s.clock.now();
    // A person answering someone who spoke of self-harm (the conversation was handed to them
    // for it) is care, not collection: safety outranks an opt-out, as for the bot's crisis
    // line. The debtor wrote on the channel within the day (above).
    let self_harm = format!("vulnerability: {}", Sign::SelfHarm.as_str());
    let care = match &record.state.mode {
        // The handoff's reason too: self-harm in a conversation a person owned already makes
        // its handoff urgent and names it there.
        Mode::Agent { reason, .. } => {
            *reason == self_harm
                || s.store
                    .handoff(&caller.tenant, &debtor.id)
                    .await?
                    .is_some_and(|h| h.reason == self_harm)
        }
        Mode::Bot => open_handoff.as_ref().is_some_and(|h| h.reason == self_harm),
    };
    // Only while the opt-out came before the care began: a debtor who opts out after it is
    // heard, the person's replies too.
    let care_since = match &record.state.mode {
        Mode::Agent { since, .. } => Some(*since),
        Mode::Bot => open_handoff.as_ref().map(|h| h.opened_at),
    };
    let opted_out_after_care = debtor
        .consents
        .iter()
        .filter(|c| c.channel == channel)
        .max_by_key(|c| c.at)
        .is_some_and(|c| !c.granted && care_since.is_some_and(|since| c.at > since));
    let care = care && !opted_out_after_care;
    if cobro::compliance::latest_consent(&debtor, channel) == Some(false) && !care {
        return Err(conflict(
            "opted-out",
            format!("the debtor's latest consent record on {} refuses contact (an opt-out, or the CRM's granted: false)", channel.as_str()),
        ));
    }
    let last = s
        .store
        .last_inbound(&caller.tenant, &debtor.id, channel)
        .await?;
    // A reply answers the debtor on the channel they wrote on, within the day, and more than
    // an hour after they wrote, inside their contact hours; the sender checks again when it
    // sends (and the consent the law requires): answering here spares the agent a silent
    // cancel.
    let outside_window = || {
        let why = if channel == ChannelKind::Whatsapp {
            "WhatsApp allows only approved templates".to_string()
        } else {
            format!("a reply on {} answers the debtor", channel.as_str())
        };
        conflict(
            "outside-window",
            format!(
                "no message from the debtor on {} in the last 24 hours: {why}; the reminders will reach them",
                channel.as_str()
            ),
        )
    };
    let Some(last) = last else {
        return Err(outside_window());
    };
    let tenant = s.tenant(&caller).await?;
    let policy = debtor_policy(&tenant, &debtor).ok();
    let sends_at = match agent_reply_time(policy.as_ref(), &debtor, channel, last, care, now) {
        AgentReplyTime::Now => None,
        AgentReplyTime::Wait { at, .. } => Some(at),
        AgentReplyTime::WindowClosed { .. } => return Err(outside_window()),
        AgentReplyTime::OutsideHours { reason } => {
            return Err(conflict(
                "outside-hours",
                format!("{reason}; the reminders will reach the debtor"),
            ))
        }
    };
    // The Idempotency-Key makes a retried request the same reply: its id is a digest of the
    // whole key, so two keys never share one (however long, whatever they hold).
    let key = headers
        .get("idempotency-key")
        .map(|v| v.as_bytes())
        .filter(|k| !k.is_empty())
        .map(|k| {
            use sha2::{Digest, Sha256};
            hex::encode(&Sha256::digest(k)[..16])
        })
        .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
    let reply = ChatReply {
        tenant: caller.tenant.clone(),
        debtor: debtor.id.clone(),
        id: format!("agent-{key}"),
        channel,
        reply: Reply::text(text),
        author: format!("agent:{agent}"),
        answers_at: None,
        created_at: now,
        status: ReplyStatus::Queued,
        provider_message_id: None,
        reason: None,
        tries: 0,
        claimed_at: None,
        confirms_opt_out: false,
        care,
        language: record.state.language,
    };
    if let Some(handoff) = open_handoff {
        take_conversation(&s, &caller.tenant, &debtor.id, &handoff.reason, now).await?;
    }
    let created = s.store.put_reply(&reply).await?;
    // Queued again when it exists and has not gone out: the first try may have saved it and
    // then failed to queue it. The sender skips a reply already sent.
    let waiting = created
        || s.store
            .reply(&reply.tenant, &reply.debtor, &reply.id)
            .await?
            .is_some_and(|r| r.status == ReplyStatus::Queued);
    if waiting {
        queue(&s, &reply).await?;
    }
    let status = if created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let mut body = json!({ "id": reply.id, "status": "queued" });
    if let Some(at) = sends_at {
        // Held for the debtor's contact hours: the sender sends it then.
        body["not_before"] = json!(at);
    }
    Ok((status, Json(body)).into_response())
}

/// The conversation passes to the agents (the bot falls silent), as a handoff by the bot does.
async fn take_conversation(
    s: &CrmApi,
    t: &TenantId,
    d: &DebtorId,
    reason: &str,
    now: jiff::Timestamp,
) -> Result<(), Problem> {
    for _ in 0..5 {
        let (mut record, version) = s.store.chat_record(t, d).await?;
        if matches!(record.state.mode, Mode::Agent { .. }) {
            return Ok(());
        }
        record.state.mode = Mode::Agent {
            since: now,
            reason: reason.to_string(),
        };
        record.state.awaiting = Default::default();
        record.state.offered.clear();
        match s.store.save_chat_record(t, d, &record, version).await {
            Ok(()) => return Ok(()),
            Err(RepoError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(conflict(
        "conversation-busy",
        "the conversation keeps changing; retry with the same Idempotency-Key",
    ))
}

async fn queue(s: &CrmApi, reply: &ChatReply) -> Result<(), Problem> {
    let Some(outbound) = &s.outbound else {
        tracing::error!("the CRM API has no outbound queue: replies cannot be sent");
        return Err(Problem::internal());
    };
    let body = ReplyMessage {
        reply: ReplyRef {
            tenant: reply.tenant.clone(),
            debtor: reply.debtor.clone(),
            id: reply.id.clone(),
        },
    };
    outbound
        .send_batch(vec![Outgoing::new(
            "0",
            serde_json::to_string(&body).expect("serializes"),
        )])
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "reply not queued");
            Problem::unavailable("the queue is unavailable; retry with the same Idempotency-Key")
        })
}

/// Hands the conversation back to the bot (`release`) or ends the agent's part (`close`).
/// The announcement is saved on the conversation's record with the change and cleared once
/// published, so a retry after a failed publish announces it (the same event, so the same id).
async fn set_bot(
    s: &CrmApi,
    caller: &Caller,
    raw: String,
    event: fn(TenantId, DebtorId, jiff::Timestamp) -> Event,
) -> Result<Response, Problem> {
    let debtor = debtor_of(s, caller, raw).await?;
    let (t, d) = (&caller.tenant, &debtor.id);
    for _ in 0..5 {
        let (mut record, mut version) = s.store.chat_record(t, d).await?;
        let was_agent = matches!(record.state.mode, Mode::Agent { .. });
        let changed = was_agent || s.store.handoff(t, d).await?.is_some();
        if changed {
            record.state.mode = Mode::Bot;
            record.state.awaiting = Default::default();
            record.state.offered.clear();
            record.state.misunderstood = 0;
            record.announce = Some(event(t.clone(), d.clone(), s.clock.now()));
            match s.store.save_chat_record(t, d, &record, version).await {
                Ok(()) => version += 1,
                Err(RepoError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
            s.store.close_handoff(t, d).await?;
        }
        if let Some(announce) = record.announce.take() {
            let detail_type = announce.detail_type.clone();
            s.bus.publish(vec![announce]).await.map_err(|e| {
                tracing::error!(error = %e, "{detail_type} not published");
                Problem::unavailable("the change is saved but not announced yet; retry")
            })?;
            // A conflict here is a newer save, which carried the announcement along: a later
            // call announces it again, under the same event id.
            match s.store.save_chat_record(t, d, &record, version).await {
                Ok(()) | Err(RepoError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        return Ok(
            Json(json!({ "debtor": debtor.id, "owner": "bot", "changed": changed }))
                .into_response(),
        );
    }
    Err(conflict(
        "conflict",
        "the conversation keeps changing; retry",
    ))
}

#[utoipa::path(post, path = "/v1/conversations/{debtor}/release", tag = "conversations", summary = "Hand the conversation back to the bot",
    params(("debtor" = String, Path, description = "the debtor's id in the CRM", pattern = r"^[A-Za-z0-9._:@-]{1,128}$")),
    responses((status = 200, body = Object), (status = 400, body = crate::openapi::ProblemDoc, content_type = "application/problem+json"), (status = 404, body = crate::openapi::ProblemDoc, content_type = "application/problem+json"), (status = 409, body = crate::openapi::ProblemDoc, content_type = "application/problem+json"), (status = 503, body = crate::openapi::ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = ["agent"])))]
pub(crate) async fn release(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    set_bot(&s, &caller, raw, |tenant, debtor, at| {
        HandoffReleased { tenant, debtor, at }.event()
    })
    .await
}

#[utoipa::path(post, path = "/v1/conversations/{debtor}/close", tag = "conversations", summary = "The person is done with the conversation",
    params(("debtor" = String, Path, description = "the debtor's id in the CRM", pattern = r"^[A-Za-z0-9._:@-]{1,128}$")),
    responses((status = 200, body = Object), (status = 400, body = crate::openapi::ProblemDoc, content_type = "application/problem+json"), (status = 404, body = crate::openapi::ProblemDoc, content_type = "application/problem+json"), (status = 409, body = crate::openapi::ProblemDoc, content_type = "application/problem+json"), (status = 503, body = crate::openapi::ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = ["agent"])))]
pub(crate) async fn close(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    set_bot(&s, &caller, raw, |tenant, debtor, at| {
        HandoffClosed { tenant, debtor, at }.event()
    })
    .await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IdentityInput {
    #[serde(default)]
    national_id: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    birth_date: Option<jiff::civil::Date>,
}

/// What the bot asks a debtor before showing anything about a debt. Only salted hashes are
/// kept; the values themselves are never stored or returned.
#[utoipa::path(put, path = "/v1/debtors/{id}/identity", tag = "debtors", summary = "The answers to the chatbot's identity check (kept only as salted hashes)",
    params(("id" = String, Path, description = "the debtor's id in the CRM", pattern = r"^[A-Za-z0-9._:@-]{1,128}$")), request_body = IdentityInput,
    responses((status = 200, body = Object), (status = 400, body = crate::openapi::ProblemDoc, content_type = "application/problem+json"), (status = 404, body = crate::openapi::ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = ["accounts:write"])))]
pub(crate) async fn put_identity(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let input: IdentityInput = parse_json(&body)?;
    if input.national_id.is_none() && input.birth_date.is_none() {
        return Err(Problem::bad_request(
            "give `national_id`, `birth_date` or both",
        ));
    }
    let debtor = id(DebtorId::parse, raw, "id")?;
    if s.store.debtor(&caller.tenant, &debtor).await?.is_none() {
        return Err(Problem::not_found(format!("no debtor `{debtor}`")));
    }
    let facts = IdentityFacts::from_raw(
        &caller.tenant,
        &debtor,
        input.national_id.as_deref(),
        input.birth_date,
    )
    .map_err(|m| Problem::invalid_field("national_id", m.trim_start_matches("national_id: ")))?;
    s.store
        .put_identity_facts(&caller.tenant, &debtor, &facts)
        .await?;
    Ok(Json(json!({
        "debtor": debtor,
        "national_id": facts.national_id_last4.is_some(),
        "birth_date": facts.birth_date.is_some(),
    }))
    .into_response())
}
