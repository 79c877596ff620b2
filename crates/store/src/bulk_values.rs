// Bulk inserts as multi-row VALUES statements, for SQLite. Included beside `queries/`.

/// Inserts leads with multi-row statements, a few hundred rows at a time.
pub(crate) async fn insert_leads(conn: &mut Conn, rows: &[LeadRow]) -> sqlx::Result<()> {
    for chunk in rows.chunks(180) {
        let mut query: QueryBuilder<Db> = QueryBuilder::new(
            "INSERT INTO leads (id, external_id, document, status, owner_id, team_id, pool_id, held, source, phone, email, tags, score, priority, created_at, updated_at, assigned_at, rule_id, sla_policy, win_probability, first_response_at, last_activity_at, closed_at) ",
        );
        query.push_values(chunk, |mut values, row| {
            values
                .push_bind(row.id.clone())
                .push_bind(row.external_id.clone())
                .push_bind(row.document.clone())
                .push_bind(row.status.clone())
                .push_bind(row.owner_id.clone())
                .push_bind(row.team_id.clone())
                .push_bind(row.pool_id.clone())
                .push_bind(row.held)
                .push_bind(row.source.clone())
                .push_bind(row.phone.clone())
                .push_bind(row.email.clone())
                .push_bind(row.tags.clone())
                .push_bind(row.score)
                .push_bind(row.priority.clone())
                .push_bind(row.created_at)
                .push_bind(row.updated_at)
                .push_bind(row.assigned_at)
                .push_bind(row.rule_id.clone())
                .push_bind(row.sla_policy.clone())
                .push_bind(row.win_probability)
                // Set only for leads moved in from another CRM with their own history.
                .push_bind(row.first_response_at)
                .push_bind(row.last_activity_at)
                .push_bind(row.closed_at);
        });
        query.build().execute(&mut *conn).await?;
    }
    Ok(())
}

pub(crate) async fn insert_decisions(conn: &mut Conn, rows: &[DecisionRow]) -> sqlx::Result<()> {
    for chunk in rows.chunks(400) {
        let mut query: QueryBuilder<Db> = QueryBuilder::new(
            "INSERT INTO decisions (id, lead_id, kind, actor, reason, rule_set_version, outcome, owner_id, record, created_at, explanation) ",
        );
        query.push_values(chunk, |mut values, row| {
            values
                .push_bind(row.id.clone())
                .push_bind(row.lead_id.clone())
                .push_bind(row.kind.clone())
                .push_bind(row.actor.clone())
                .push_bind(row.reason.clone())
                .push_bind(row.rule_set_version)
                .push_bind(row.outcome.clone())
                .push_bind(row.owner_id.clone())
                .push_bind(row.record.clone())
                .push_bind(row.created_at)
                .push_bind(row.explanation.clone());
        });
        query.build().execute(&mut *conn).await?;
    }
    Ok(())
}
