"""The Slack adapter: Slack events in, answers streamed back into threads.

    adapter.py      SlackAdapter: Bolt AsyncApp, HTTP (/slack/events) and Socket Mode, start/stop
    handlers.py     Bolt listeners (events, assistant pane, /seed) -> a task per message -> the core
    agent.py        agent view (Messages tab prompts, app context), Stop/feedback clicks, session stop
    controls.py     pure: the Stop and feedback buttons as Block Kit, block_actions payloads parsed
    manifest.py     the app manifest (YAML) from what handlers.py registers
    events_logic.py pure: event payload -> Incoming, or why it is ignored
    sink.py         the ReplySink: splitting, pacing, assistant status
    stream.py       one Slack message: chat streaming, falling back to postMessage + update
    files.py        shared files: downloaded with the bot token, capped, classified by name and content
    users.py        display names from users.info, in a bounded LRU
    notifier.py     bot.ports.Notifier: DMs (with a chart) and channel posts for the scheduler
    fixtures/       real-shaped Events API payloads for the pure tests

A conversation is a Slack thread: its key is the message's thread_ts, or the message's own ts when it
starts one (also in DMs, where Slack's streaming can only answer inside a thread).
"""
