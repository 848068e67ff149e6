//! Draws one frame of `cluster watch` from a [`View`] with ratatui: a header
//! line, brokers beside throughput sparklines, partitions, consumer-group lag
//! beside the newest events, a footer. Also renders the same frame as plain
//! text (no terminal, no colour) for `cluster watch` without a tty. Never
//! polls the cluster and never decides what is highlighted.

use super::model::{BrokerRow, EventSnap, GroupRow, LinkView, PartitionRow, TopicRate, View};
use ratatui::backend::TestBackend;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Sparkline, Table};
use ratatui::{Frame, Terminal};

/// Rows of the groups/events panes in the live view, borders included.
const BOTTOM_ROWS_LIVE: u16 = 12;
/// Widest topic name shown beside a sparkline.
const TOPIC_NAME_COLUMNS_MAX: u16 = 24;
/// Columns for the rate printed after a sparkline ("123456 msg/s").
const RATE_COLUMNS: u16 = 13;
/// Columns of the brokers pane.
const BROKERS_COLUMNS: u16 = 56;
/// Columns of the consumer-groups pane (the events pane takes the rest).
const GROUPS_COLUMNS: u16 = 48;

fn bold() -> Style {
    Style::default().add_modifier(Modifier::BOLD)
}
fn changed() -> Style {
    Style::default()
        .fg(Color::Yellow)
        .add_modifier(Modifier::BOLD)
}
fn bad() -> Style {
    Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
}
fn good() -> Style {
    Style::default().fg(Color::Green)
}

fn ids(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |x| x.to_string())
}

fn leader_name(v: Option<u32>) -> String {
    v.map_or_else(|| "none".into(), |l| l.to_string())
}

/// `HH:MM:SS.mmm` UTC of a Unix time in milliseconds.
pub fn clock_utc(unix_ms: u64) -> String {
    let ms = unix_ms % 1000;
    let s = unix_ms / 1000 % 86_400;
    format!("{:02}:{:02}:{:02}.{ms:03}", s / 3600, s / 60 % 60, s % 60)
}

fn header(v: &View, interval_ms: u64) -> Line<'static> {
    let alive = v.brokers.iter().filter(|b| b.alive).count();
    let mut spans = vec![
        Span::styled(" YaK ", bold()),
        Span::raw(format!(
            "│ brokers {alive}/{} alive │ partitions {} │ ",
            v.brokers.len(),
            v.partitions.len()
        )),
        Span::styled(
            format!("under-replicated {}", v.under_replicated),
            if v.under_replicated > 0 {
                changed()
            } else {
                Style::default()
            },
        ),
        Span::raw(" │ "),
        Span::styled(
            format!("offline {}", v.offline),
            if v.offline > 0 {
                bad()
            } else {
                Style::default()
            },
        ),
        Span::raw(" │ "),
    ];
    spans.push(match &v.link {
        LinkView::Waiting => Span::raw("connecting…"),
        LinkView::Live { age_ms } => Span::styled(
            format!("live: polled every {interval_ms} ms, {age_ms} ms ago"),
            good(),
        ),
        LinkView::Reconnecting { for_ms, error } => Span::styled(
            format!("reconnecting… ({:.1} s: {error})", *for_ms as f64 / 1000.0),
            bad(),
        ),
    });
    Line::from(spans)
}

fn titled(title: String) -> Block<'static> {
    Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(title, bold()))
}

fn broker_table(rows: &[BrokerRow]) -> Table<'static> {
    let head =
        Row::new(["broker", "pid", "alive", "restarts", "leads", "under-repl"]).style(bold());
    let body = rows.iter().map(|b| {
        let alive = if b.alive {
            Cell::from("yes")
        } else {
            Cell::from("NO").style(bad())
        };
        let urp = Cell::from(b.under_replicated.to_string()).style(if b.under_replicated > 0 {
            changed()
        } else {
            Style::default()
        });
        Row::new(vec![
            Cell::from(b.id.to_string()),
            Cell::from(b.pid.to_string()),
            alive,
            Cell::from(b.restarts.to_string()),
            Cell::from(b.leads.to_string()),
            urp,
        ])
    });
    let widths = [6, 8, 5, 8, 5, 10].map(Constraint::Length);
    Table::new(body, widths)
        .header(head)
        .block(titled(" Brokers ".into()))
}

fn partition_row(p: &PartitionRow) -> Row<'static> {
    let leader = match p.leader_was {
        Some(was) => Cell::from(format!(
            "{} (was {})",
            leader_name(p.leader),
            leader_name(was)
        ))
        .style(changed()),
        None if p.offline => Cell::from("none").style(bad()),
        None => Cell::from(leader_name(p.leader)),
    };
    let mut isr = vec![Span::raw(ids(&p.isr))];
    if !p.isr_shrunk.is_empty() {
        isr.push(Span::styled(format!(" (-{})", ids(&p.isr_shrunk)), bad()));
    }
    if !p.isr_expanded.is_empty() {
        isr.push(Span::styled(
            format!(" (+{})", ids(&p.isr_expanded)),
            good(),
        ));
    }
    let state = if p.offline {
        Cell::from("OFFLINE").style(bad())
    } else if p.under_replicated {
        Cell::from("under-replicated").style(changed())
    } else {
        Cell::from("ok")
    };
    Row::new(vec![
        Cell::from(p.name.clone()),
        leader,
        Cell::from(Line::from(isr)),
        Cell::from(p.leader_epoch.to_string()),
        Cell::from(opt(p.high_watermark)),
        Cell::from(opt(p.log_end_offset)),
        state,
    ])
}

fn partition_table(rows: &[PartitionRow]) -> Table<'static> {
    let head = Row::new([
        "partition",
        "leader",
        "isr",
        "epoch",
        "high watermark",
        "log end",
        "state",
    ])
    .style(bold());
    let name_cols = rows
        .iter()
        .map(|p| p.name.len())
        .max()
        .unwrap_or(0)
        .clamp(9, 40) as u16;
    let widths = [
        Constraint::Length(name_cols),
        Constraint::Length(14),
        Constraint::Length(16),
        Constraint::Length(6),
        Constraint::Length(15),
        Constraint::Length(12),
        Constraint::Min(8),
    ];
    Table::new(rows.iter().map(partition_row), widths)
        .header(head)
        .block(titled(format!(" Partitions ({}) ", rows.len())))
}

fn group_table(rows: &[GroupRow]) -> Table<'static> {
    let head = Row::new(["group", "state", "members", "topic", "lag"]).style(bold());
    let body = rows.iter().map(|g| {
        Row::new(vec![
            g.group.clone(),
            g.state.clone(),
            g.members.to_string(),
            g.topic.clone().unwrap_or_else(|| "-".into()),
            opt(g.lag),
        ])
    });
    let widths = [
        Constraint::Min(6),
        Constraint::Length(11),
        Constraint::Length(7),
        Constraint::Min(8),
        Constraint::Length(7),
    ];
    Table::new(body, widths)
        .header(head)
        .block(titled(" Consumer groups ".into()))
}

fn events_pane(events: &[EventSnap], rows: u16) -> Paragraph<'static> {
    let skip = events
        .len()
        .saturating_sub(usize::from(rows.saturating_sub(2)));
    let lines: Vec<Line> = events[skip..]
        .iter()
        .map(|e| {
            Line::from(vec![
                Span::styled(clock_utc(e.at_unix_ms), bold()),
                Span::raw(format!(" {}", e.text)),
            ])
        })
        .collect();
    let lines = if lines.is_empty() {
        vec![Line::from("no events yet")]
    } else {
        lines
    };
    Paragraph::new(lines).block(titled(" Events (newest last, UTC) ".into()))
}

fn draw_throughput(frame: &mut Frame, area: Rect, topics: &[TopicRate]) {
    let block = titled(" Throughput (records/s, one bar per poll) ".into());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if topics.is_empty() {
        frame.render_widget(Paragraph::new("no topics"), inner);
        return;
    }
    let name_cols = topics
        .iter()
        .map(|t| t.topic.len())
        .max()
        .unwrap_or(0)
        .min(usize::from(TOPIC_NAME_COLUMNS_MAX));
    for (i, t) in topics.iter().enumerate().take(usize::from(inner.height)) {
        let line = Rect {
            y: inner.y + i as u16,
            height: 1,
            ..inner
        };
        let [name, spark, rate] = Layout::horizontal([
            Constraint::Length(name_cols as u16 + 1),
            Constraint::Min(1),
            Constraint::Length(RATE_COLUMNS),
        ])
        .areas(line);
        frame.render_widget(Paragraph::new(t.topic.clone()), name);
        let shown = t.samples.len().saturating_sub(usize::from(spark.width));
        let data = &t.samples[shown..];
        frame.render_widget(Sparkline::default().data(data).style(good()), spark);
        frame.render_widget(Paragraph::new(format!(" {:>6} /s", opt(t.per_sec()))), rate);
    }
}

/// Rows the brokers/throughput band needs, borders and header included.
fn top_rows(v: &View) -> u16 {
    (v.brokers.len() as u16 + 3)
        .max(v.topics.len() as u16 + 2)
        .max(4)
}

/// Rows a frame needs to show everything (the plain-text frame's height).
pub fn full_height(v: &View) -> u16 {
    let bottom = (v.groups.len() as u16 + 3)
        .max(v.events.len() as u16 + 2)
        .max(4);
    1 + top_rows(v) + v.partitions.len() as u16 + 3 + bottom
}

/// Draws one frame. `live`: the screen's height is fixed; partitions take
/// the rows they need (fewer on a small screen), the groups and events panes
/// the rest, and a key help line ends the frame. Otherwise the frame is
/// [`full_height`] tall and shows everything.
pub fn draw(frame: &mut Frame, v: &View, interval_ms: u64, live: bool) {
    let area = frame.area();
    let parts_rows = v.partitions.len() as u16 + 3;
    let low_rows = if live {
        Constraint::Min(BOTTOM_ROWS_LIVE)
    } else {
        Constraint::Length(
            (v.groups.len() as u16 + 3)
                .max(v.events.len() as u16 + 2)
                .max(4),
        )
    };
    let [head, top, parts, low, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(top_rows(v)),
        Constraint::Length(parts_rows),
        low_rows,
        Constraint::Length(u16::from(live)),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(header(v, interval_ms)), head);
    let [brokers, rates] =
        Layout::horizontal([Constraint::Length(BROKERS_COLUMNS), Constraint::Min(20)]).areas(top);
    frame.render_widget(broker_table(&v.brokers), brokers);
    draw_throughput(frame, rates, &v.topics);
    frame.render_widget(partition_table(&v.partitions), parts);
    let [groups, events] =
        Layout::horizontal([Constraint::Length(GROUPS_COLUMNS), Constraint::Min(20)]).areas(low);
    if v.groups.is_empty() {
        frame.render_widget(
            Paragraph::new("no consumer groups").block(titled(" Consumer groups ".into())),
            groups,
        );
    } else {
        frame.render_widget(group_table(&v.groups), groups);
    }
    frame.render_widget(events_pane(&v.events, events.height), events);
    if live {
        frame.render_widget(Paragraph::new(" q quit").style(bold()), foot);
    }
}

/// The whole frame as plain text, `width` columns wide, trailing blanks cut.
pub fn plain(v: &View, interval_ms: u64, width: u16) -> String {
    // An in-memory backend cannot fail (its error type is `Infallible`).
    let Ok(mut terminal) = Terminal::new(TestBackend::new(width, full_height(v)));
    let Ok(_) = terminal.draw(|f| draw(f, v, interval_ms, false));
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        let line: String = (0..buffer.area.width)
            .filter_map(|x| buffer.cell((x, y)))
            .map(|c| c.symbol())
            .collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::watch::model::{PartitionSnap, Snapshot, WatchModel};

    #[test]
    fn given_unix_ms_when_formatting_should_print_utc_clock() {
        assert_eq!(clock_utc(0), "00:00:00.000");
        assert_eq!(clock_utc(86_400_000 + 3_723_045), "01:02:03.045");
    }

    #[test]
    fn given_a_failover_when_rendering_plain_should_show_leader_change_and_shrunk_isr() {
        let p = |leader, isr: &[u32]| PartitionSnap {
            topic: "orders".into(),
            partition: 0,
            leader: Some(leader),
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
            leader_epoch: 1,
            high_watermark: Some(10),
            log_end_offset: Some(12),
        };
        let mut m = WatchModel::default();
        m.apply(
            0,
            Snapshot {
                partitions: vec![p(2, &[2, 3, 1])],
                ..Snapshot::default()
            },
        );
        m.apply(
            250,
            Snapshot {
                partitions: vec![p(3, &[3, 1])],
                ..Snapshot::default()
            },
        );
        let text = plain(&m.view(250), 250, 120);
        assert!(text.contains("orders-0"), "{text}");
        assert!(text.contains("3 (was 2)"), "{text}");
        assert!(text.contains("3,1 (-2)"), "{text}");
        assert!(text.contains("under-replicated 1"), "{text}");
        assert_eq!(text.lines().count(), usize::from(full_height(&m.view(250))));
    }
}
