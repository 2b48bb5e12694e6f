// The browser page of chatd: protocol v1 (with the 1.1 additions) over a
// WebSocket at ./ws, one plain ES module, no framework and no build step.
//
// Theory of operation.  Three parts, data flowing one way:
//   Connection  the WebSocket: server messages cut into CRLF lines; lines
//               sent LF-separated; reconnect with a growing, jittered delay.
//   Session     what the user knows (a port of chat-tui's ClientState,
//               chatclient/state.py): the login, the members, the history
//               replay and the reconnect's missed lines.  It never touches
//               the DOM; it hands records ({kind, text, nick, ...}) to the view.
//   View        the DOM.  Every piece of text from the network goes in with
//               textContent, never as HTML: the page's CSP has
//               require-trusted-types-for 'script', so innerHTML would throw.

const NICK_RE = /^[A-Za-z][A-Za-z0-9_-]{0,19}$/;
const NICK_RULES = "a nick is 1-20 ASCII letters, digits, '_' or '-', starting with a letter";
const SERVER_NICK = "*";
const HISTORY_LINES = 50;      // asked after each login to a chatd 1.1 server, as chat-tui
const MAX_LINES = 2000;        // lines kept in the page
const MAX_HELD = 1000;         // live lines held back while a HISTORY reply is on its way
const MAX_UNSTAMPED = 1000;
const INPUT_HISTORY = 200;     // typed lines Up/Down can recall
const MAX_ALERTS = 3;          // WALL banners shown at once
const PALETTE = 16;            // nick colour classes nick-0 .. nick-15
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 30000;
const STABLE_MS = 10000;       // a connection this old counts as a success for the back-off
const QUIT_WAIT_MS = 3000;     // how long /quit waits for BYE
const NICK_STORE = "chatd.nick";
const ROOM_VERBS = new Set(["SAY", "JOIN", "PART", "RENAME"]);
const LIVE_VERBS = new Set(["SAY", "JOIN", "PART", "RENAME", "TELL", "WALL"]);
// What the server would strip (protocol §5): C0 but TAB, DEL, C1, bidi controls.
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

// --- pure helpers -------------------------------------------------------

const nickKey = (nick) => nick.toLowerCase();  // nicks are ASCII
const isValidNick = (nick) => NICK_RE.test(nick);
const cleanText = (text) => text.replace(CONTROLS, "");
const blank = (text) => text === null || text === undefined || text.trim() === "";
const linesWord = (n) => (n === 1 ? "1 line" : `${n} lines`);
const byNick = (a, b) => a.toLowerCase().localeCompare(b.toLowerCase()) || (a < b ? -1 : a > b ? 1 : 0);

/** A nick's colour class: a stable hash (djb2) of the lower-case nick. */
export function nickColour(nick) {
  let hash = 5381;
  for (let i = 0; i < nick.length; i += 1) {
    hash = (Math.imul(hash, 33) + nick.toLowerCase().charCodeAt(i)) >>> 0;
  }
  return hash % PALETTE;
}

/** Whether text names nick as a whole word, ignoring case (as chat-tui). */
export function mentions(text, nick) {
  const escaped = nick.replace(/[-]/g, "\\-");
  return new RegExp(`(?<![A-Za-z0-9_-])${escaped}(?![A-Za-z0-9_-])`, "i").test(text);
}

/** The first space-separated field and the rest after exactly one space. */
function cut(text) {
  const space = text.indexOf(" ");
  return space < 0 ? [text, ""] : [text.slice(0, space), text.slice(space + 1)];
}

/** A server line's @<time> prefix (protocol 1.1 §12) and the 1.0 line. */
export function splitTime(line) {
  if (line.startsWith("@")) {
    const space = line.indexOf(" ");
    if (space > 1) return [line.slice(1, space), line.slice(space + 1)];
  }
  return [null, line];
}

/** A protocol time (ISO 8601, ms, Z) as milliseconds since the epoch, or null. */
function parseTime(text) {
  if (text === null) return null;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : ms;
}

/** One server line (without a time prefix) as an object with its verb. */
export function parseLine(line) {
  const [verb, rest] = cut(line);
  switch (verb) {
    case "HELLO": { const [version, text] = cut(rest); return { verb, version, text }; }
    case "OK": { const [command, args] = cut(rest); return { verb, command, args }; }
    case "ERR": { const [code, text] = cut(rest); return { verb, code, text }; }
    case "JOIN": return { verb, nick: rest };
    case "PART": { const [nick, reason] = cut(rest); return { verb, nick, reason }; }
    case "RENAME": { const [old, nick] = cut(rest); return { verb, old, nick }; }
    case "SAY": case "TELL": case "WALL": { const [nick, text] = cut(rest); return { verb, nick, text }; }
    case "USERS": return { verb, nicks: rest.split(" ").filter(Boolean) };
    case "BYE": case "HELP": case "PONG": return { verb, text: rest };
    case "HIST": { const [time, inner] = cut(rest); return { verb, time, line: inner }; }
    default: return { verb: "", line };  // a newer server's verb: ignored
  }
}

/** Whether a HELLO version (chatd/1.1.0) is chatd 1.1 or later. */
function speaks11(version) {
  const match = /^chatd\/(\d+)\.(\d+)(?!\d)/.exec(version);
  return match !== null && (Number(match[1]) > 1 || (Number(match[1]) === 1 && Number(match[2]) >= 1));
}

const PROTOCOL_WORDS = [["OPER <password>", "/oper PASSWORD"], ["NICK <name>", "/nick NAME"],
  ["WALL", "/wall"], ["HELP", "/help"]];

function commandsInWords(text) {
  let words = text;
  for (const [verb, command] of PROTOCOL_WORDS) words = words.split(verb).join(command);
  return words.replace(/\.+$/, "");
}

function sentence(text) {
  const bare = text.replace(/\.+$/, "");
  return bare ? `${bare[0].toUpperCase()}${bare.slice(1)}.` : "The server refused that.";
}

/** A server refusal as a sentence for people (the words of chat-tui). */
export function errorWords(code, text, nick) {
  switch (code) {
    case "bad-nick": return `${nick ? `“${nick}”` : "That"} cannot be used as a nick: ${NICK_RULES}.`;
    case "nick-taken": return `${nick || "That nick"} is already taken; please choose another nick.`;
    case "no-such-user": return sentence(text);
    case "need-nick": return "You are not logged in yet.";
    case "missing-argument": return `Something is missing: ${commandsInWords(text)}.`;
    case "line-too-long": return "That line is too long for the server; it was not sent.";
    case "bad-encoding": return "The server could not read that line (it was not UTF-8).";
    case "flood": return "You are sending faster than the server allows; your lines are delayed, not lost.";
    case "not-permitted": return `Not allowed: ${commandsInWords(text)}.`;
    case "unknown-command": return "The server did not understand that command.";
    default: return `The server refused that: ${commandsInWords(text)}.`;
  }
}

// --- what the user types -------------------------------------------------

const COMMANDS = {
  "/msg": ["/msg NICK TEXT", "say TEXT privately to NICK"],
  "/tell": ["/tell NICK TEXT", "the same as /msg"],
  "/nick": ["/nick NAME", "change your nick"],
  "/wall": ["/wall TEXT", "alert everyone connected (may need /oper)"],
  "/who": ["/who", "list who is in the room"],
  "/oper": ["/oper PASSWORD", "become an operator"],
  "/help": ["/help", "this list of commands and keys"],
  "/clear": ["/clear", "clear the chat (the room is not affected)"],
  "/quit": ["/quit [REASON]", "leave; the others see the reason"],
};

const HELP_LINES = [
  "Type a line and press Enter to say it to the room.",
  ...Object.values(COMMANDS).map(([usage, summary]) => `${usage} — ${summary}`),
  "//TEXT — say a line that starts with /",
  "Keys: Tab completes nicks and commands; Up and Down recall what you typed.",
];

/**
 * What one typed line means: {line} to send (and {tell} for a private
 * message), {local: "help"|"clear"}, {problem} in words, or null (blank).
 */
export function parseInput(typed) {
  const text = cleanText(typed);
  if (blank(text)) return null;
  if (text.startsWith("//")) return { line: `SAY ${text.slice(1)}` };
  if (!text.startsWith("/")) return { line: `SAY ${text}` };
  const [name, rest] = cut(text);
  const command = name.toLowerCase();
  const usage = COMMANDS[command] ? { problem: `Usage: ${COMMANDS[command][0]}` } : null;
  switch (command) {
    case "/msg": case "/tell": {
      const [nick, said] = cut(rest.trim());
      const told = said.replace(/^ +/, "");
      if (!nick || blank(told)) return usage;
      return { line: `TELL ${nick} ${told}`, tell: [nick, told] };
    }
    case "/nick": {
      const nick = rest.trim();
      if (!nick) return usage;
      if (!isValidNick(nick)) return { problem: `“${nick}” cannot be used as a nick: ${NICK_RULES}.` };
      return { line: `NICK ${nick}`, nick };
    }
    case "/wall": return blank(rest) ? usage : { line: `WALL ${rest}` };
    case "/who": return { line: "WHO" };
    case "/oper": return blank(rest) ? usage : { line: `OPER ${rest.trim()}` };
    case "/help": return { local: "help" };
    case "/clear": return { local: "clear" };
    case "/quit": return { line: blank(rest) ? "QUIT" : `QUIT ${rest.trim()}`, quit: true };
    default:
      return { problem: `There is no command ${name}. Type /help for the list, `
        + "or start the line with // to say it as it is." };
  }
}

/**
 * Tab completion of the word before the cursor: [how many characters to
 * replace, candidates].  A command when it is the first word and starts with
 * "/", else a nick (ignoring case); a nick at the start gets ": " after it.
 */
export function completions(beforeCursor, nicks) {
  const start = beforeCursor.lastIndexOf(" ") + 1;
  const word = beforeCursor.slice(start);
  if (start === 0 && word.startsWith("/") && !word.startsWith("//")) {
    return [word.length, Object.keys(COMMANDS).filter((c) => c.startsWith(word.toLowerCase())).map((c) => `${c} `)];
  }
  if (!word) return [0, []];
  const folded = word.toLowerCase();
  const suffix = start === 0 ? ": " : " ";
  return [word.length, nicks.filter((n) => n.toLowerCase().startsWith(folded)).sort(byNick).map((n) => n + suffix)];
}

// --- the session ---------------------------------------------------------

/** Add one to a counter kept in a Map. */
function count(map, key, by = 1) {
  map.set(key, (map.get(key) || 0) + by);
}

/**
 * One chat session as the user sees it, across reconnects.  `send(lines)`
 * sends protocol lines (false when not connected); `show(record)` draws one
 * transcript line; `changed()` tells the view to refresh the rest.
 */
export class Session {
  constructor({ server, nick, send, show, changed }) {
    this.server = server;
    this.send = send;
    this.show = show;
    this.changed = changed;
    this.nick = null;
    this.wantedNick = nick || "";
    this.asked = [];              // nicks sent with NICK, answered in order
    this.phase = "need-nick";     // need-nick -> logging-in -> in
    this.autoLogin = false;
    this.loginError = "";
    this.link = "connecting";     // connecting, connected, lost, closed
    this.linkDetail = "";
    this.version = "";
    this.isOper = false;
    this.quitting = false;
    this.members = new Map();     // nick key -> nick as spelled
    this.membersVersion = 0;      // bumped at every change of members
    this.who = null;
    this.byeSeen = false;
    this.byeReason = "";
    this.reconnecting = false;
    this.tells = [];              // [nick, text] sent and not yet confirmed
    this.now = null;              // the @<time> of the line being applied: [ms, iso]
    // Protocol 1.1, as chat-tui: see docs/client.md "History and server time".
    this.everIn = false;
    this.returning = false;
    this.timePending = false;
    this.unstamped = [];
    this.newest = null;           // the newest server time of a room line shown
    this.atNewest = new Map();    // the room lines shown at exactly that time
    this.replay = null;           // "earlier" | "missed" while a HISTORY reply is due
    this.replayOpen = false;
    this.replayed = 0;
    this.since = null;
    this.sinceLines = new Map();
    this.holding = false;
    this.held = [];
  }

  get loggedIn() { return this.phase === "in"; }

  /** Whether to ask for a nick: not logged in, and not about to be again by ourselves. */
  get showLogin() { return this.phase !== "in" && !(this.autoLogin && this.everIn); }

  isMe(nick) { return Boolean(nick) && this.nick !== null && nickKey(nick) === nickKey(this.nick); }

  sortedMembers() { return [...this.members.values()].sort(byNick); }

  // --- the transcript ---

  add(kind, text, { nick = null, own = false, mention = false, replay = null, when = null } = {}) {
    let stamp = when;
    if (stamp === null) stamp = this.now !== null ? this.now : [Date.now(), null];
    const record = { kind, text, nick, own, mention, replay, when: stamp[0], iso: stamp[1] };
    if (this.holding) this.held.push(record);
    else this.show(record);
  }

  release() {
    const held = this.held;
    this.held = [];
    for (const record of held) this.show(record);
  }

  note(text) { this.add("info", text); }

  problem(text) { this.add("error", text); }

  // --- the connection ---

  connected() {
    this.link = "connected";
    this.linkDetail = "";
    this.phase = "need-nick";
    this.members.clear();
    this.membersVersion += 1;
    this.who = null;
    this.byeSeen = false;
    this.byeReason = "";
    this.asked = [];
    this.returning = this.everIn;
    this.timePending = false;
    this.unstamped = [];
    this.replay = null;
    this.replayOpen = false;
    this.held = [];
    if (this.wantedNick && this.autoLogin) this.sendNick(this.wantedNick);
    this.changed();
  }

  connectionLost(reason) {
    const wasIn = this.phase === "in";
    this.link = this.quitting ? "closed" : "lost";
    this.linkDetail = "";
    this.phase = "need-nick";
    this.autoLogin = (wasIn || this.autoLogin) && !this.quitting;
    this.isOper = false;
    this.members.clear();
    this.membersVersion += 1;
    this.tells = [];
    this.release();  // a replay cut short: show what was heard meanwhile
    this.replay = null;
    if (!this.quitting && !this.byeSeen) this.problem(`Lost the connection to ${this.server} (${reason}).`);
    this.changed();
  }

  retrying(delayMs, attempt) {
    this.link = "lost";
    this.reconnecting = true;
    if (attempt === 1) this.note(`Reconnecting (waiting ${(delayMs / 1000).toFixed(1)} s first)…`);
    this.changed();
  }

  closed(detail) {
    this.link = "closed";
    this.linkDetail = detail;
    this.changed();
  }

  // --- the user ---

  sendNick(nick) {
    this.phase = this.phase === "in" ? "in" : "logging-in";
    this.asked.push(nick);
    this.send([`NICK ${nick}`]);
  }

  /** The nick typed in the login box; true when it went out (or will on connect). */
  login(typed) {
    const name = typed.trim();
    if (!name) {
      this.loginError = "Please type a nick.";
    } else if (!isValidNick(name)) {
      this.loginError = `“${name}” cannot be used as a nick: ${NICK_RULES}.`;
    } else if (this.phase === "need-nick") {
      this.loginError = "";
      this.wantedNick = name;
      this.quitting = false;
      if (this.link === "connected") {
        this.sendNick(name);
      } else {
        this.autoLogin = true;  // sent as soon as the connection is up
      }
      this.changed();
      return true;
    }
    this.changed();
    return false;
  }

  /** One typed line; whether it was taken (false leaves it in the input). */
  submit(typed) {
    const outcome = parseInput(typed);
    if (outcome === null) return true;
    if (outcome.problem) {
      this.problem(outcome.problem);
      return false;
    }
    if (outcome.local === "help") {
      for (const line of HELP_LINES) this.note(line);
      return true;
    }
    if (outcome.local === "clear") return true;  // the view clears itself
    if (!this.loggedIn) {
      this.problem("Not logged in right now (see the top bar); that line was not sent.");
      return false;
    }
    if (outcome.quit) this.quitting = true;
    if (outcome.nick) this.asked.push(outcome.nick);
    if (!this.send([outcome.line])) {
      this.problem("Not connected; that line was not sent.");
      this.quitting = false;
      return false;
    }
    if (outcome.tell) this.tells.push(outcome.tell);
    this.changed();
    return true;
  }

  // --- server lines ---

  receive(raw) {
    const [stamp, line] = splitTime(raw);
    const message = parseLine(line);
    const when = parseTime(stamp);
    if (when !== null && this.timePending) {
      this.timePending = false;
      for (const key of this.unstamped) this.shownAt(when, key);
      this.unstamped = [];
    }
    const hold = this.holdBack(message);
    if (hold && this.held.length >= MAX_HELD) this.release();
    this.now = when !== null ? [when, stamp] : null;
    this.holding = hold;
    try {
      this.apply(message);
    } finally {
      this.now = null;
      this.holding = false;
    }
    if (ROOM_VERBS.has(message.verb)) {
      if (when !== null) this.shownAt(when, line);
      else if (this.timePending && this.unstamped.length < MAX_UNSTAMPED) this.unstamped.push(line);
    }
    this.changed();
  }

  holdBack(message) {
    if (this.replay === null || !LIVE_VERBS.has(message.verb)) return false;
    return !(message.verb === "JOIN" && this.isMe(message.nick));
  }

  shownAt(when, key) {
    if (this.newest === null || when > this.newest) {
      this.newest = when;
      this.atNewest = new Map([[key, 1]]);
    } else if (when === this.newest) {
      count(this.atNewest, key);
    }
  }

  apply(m) {
    if (m.verb === "JOIN" || m.verb === "PART" || m.verb === "RENAME") this.membersVersion += 1;
    switch (m.verb) {
      case "HELLO": {
        this.version = m.version;
        const again = this.reconnecting;
        this.reconnecting = false;
        this.note(`${again ? "Reconnected" : "Connected"} to ${this.server} (${m.version}).`);
        break;
      }
      case "OK": this.applyOk(m); break;
      case "ERR": this.applyError(m); break;
      case "JOIN":
        this.members.set(nickKey(m.nick), m.nick);
        if (this.isMe(m.nick)) this.add("join", `You joined the room as ${m.nick}.`, { nick: m.nick, own: true });
        else this.add("join", `${m.nick} joined.`, { nick: m.nick });
        break;
      case "PART":
        this.members.delete(nickKey(m.nick));
        this.add("part", m.reason ? `${m.nick} left (${m.reason}).` : `${m.nick} left.`, { nick: m.nick });
        break;
      case "RENAME":
        this.members.delete(nickKey(m.old));
        this.members.set(nickKey(m.nick), m.nick);
        if (this.isMe(m.nick) || this.isMe(m.old)) {
          this.nick = m.nick;
          this.wantedNick = m.nick;
          this.add("rename", `You are now known as ${m.nick}.`, { nick: m.nick, own: true });
        } else {
          this.add("rename", `${m.old} is now known as ${m.nick}.`, { nick: m.nick });
        }
        break;
      case "SAY": {
        const own = this.isMe(m.nick);
        const mention = !own && this.nick !== null && mentions(m.text, this.nick);
        this.add("say", m.text, { nick: m.nick, own, mention });
        break;
      }
      case "TELL": this.add("tell-in", m.text, { nick: m.nick }); break;
      case "WALL": {
        const sender = m.nick === SERVER_NICK ? null : m.nick;
        this.add("wall", m.text, { nick: sender, own: this.isMe(sender) });
        break;
      }
      case "USERS": this.who = (this.who || []).concat(m.nicks); break;
      case "HIST": this.applyHist(m); break;
      case "BYE":
        this.byeSeen = true;
        this.byeReason = m.text;
        this.release();
        if (this.quitting) this.note(`Disconnected: ${m.text}.`);
        else this.problem(`The server closed the connection: ${m.text}.`);
        break;
      case "HELP": this.note(m.text); break;
      default: break;  // PONG, and verbs of newer servers
    }
  }

  applyOk(m) {
    switch (m.command) {
      case "NICK": {
        this.asked.shift();
        const nick = m.args || this.wantedNick;
        const login = this.phase !== "in";
        this.phase = "in";
        this.loginError = "";
        this.nick = nick;
        this.wantedNick = nick;
        if (login) {
          this.everIn = true;
          this.autoLogin = true;
          if (speaks11(this.version)) {
            this.timePending = true;
            this.send(["TIME ON", `HISTORY ${HISTORY_LINES}`]);
            this.historyAsked();
          }
        }
        break;
      }
      case "WHO": {
        const nicks = this.who || [];
        this.who = null;
        this.members = new Map(nicks.map((n) => [nickKey(n), n]));
        this.membersVersion += 1;
        this.note(`In the room (${nicks.length}): ${this.sortedMembers().join(", ")}`);
        break;
      }
      case "OPER":
        this.isOper = true;
        this.note("You are now an operator.");
        break;
      case "TELL": {
        while (this.tells.length) {
          const [wanted, text] = this.tells.shift();
          if (nickKey(wanted) === nickKey(m.args)) {
            this.add("tell-out", text, { nick: m.args, own: true });
            break;
          }
        }
        break;
      }
      case "HISTORY": this.replayEnded(); break;
      default: break;  // OK TIME ON
    }
  }

  applyError(m) {
    const aboutNick = m.code === "bad-nick" || m.code === "nick-taken";
    const nick = aboutNick ? this.asked.shift() || this.wantedNick : null;
    const words = errorWords(m.code, m.text, nick);
    if (m.code === "no-such-user") this.tells.shift();
    if (aboutNick && this.phase === "logging-in") {
      this.phase = "need-nick";
      this.autoLogin = false;
      this.loginError = words;
    }
    this.problem(words);
    if (this.replay !== null && ["unknown-command", "bad-argument", "need-nick"].includes(m.code)) {
      this.replayEnded();  // HISTORY refused: no reply will end it
    }
  }

  // --- the HISTORY reply (protocol 1.1) ---

  historyAsked() {
    const missed = this.returning && this.newest !== null;
    this.replay = missed ? "missed" : "earlier";
    this.replayOpen = false;
    this.replayed = 0;
    this.since = this.newest;
    this.sinceLines = new Map(this.atNewest);
  }

  applyHist(m) {
    const replay = this.replay || "earlier";
    const inner = parseLine(m.line);
    const when = parseTime(m.time);
    if (replay === "missed" && !this.missed(when, m.line)) return;
    if (!this.replayOpen) {
      this.replayOpen = true;
      this.add("history", replay === "missed" ? "missed while disconnected" : "history", { replay });
    }
    const options = { nick: inner.nick || null, replay, when: [when !== null ? when : Date.now(), m.time] };
    switch (inner.verb) {
      case "SAY": this.add("say", inner.text, { ...options, own: this.isMe(inner.nick) }); break;
      case "JOIN": this.add("join", `${inner.nick} joined.`, options); break;
      case "PART":
        this.add("part", inner.reason ? `${inner.nick} left (${inner.reason}).` : `${inner.nick} left.`, options);
        break;
      case "RENAME": this.add("rename", `${inner.old} is now known as ${inner.nick}.`, options); break;
      default: this.add("info", m.line, options); break;
    }
    this.replayed += 1;
    if (when !== null && ROOM_VERBS.has(inner.verb)) this.shownAt(when, m.line);
  }

  /** Whether a replayed line was said after what was shown before the drop. */
  missed(when, key) {
    if (when === null) return false;
    if (this.since === null || when > this.since) return true;
    if (when < this.since) return false;
    if ((this.sinceLines.get(key) || 0) > 0) {  // the newest millisecond: was this one shown?
      count(this.sinceLines, key, -1);
      return false;
    }
    return true;
  }

  replayEnded() {
    const replay = this.replay || "earlier";
    const opened = this.replayOpen;
    const shown = this.replayed;
    this.replay = null;
    this.replayOpen = false;
    this.replayed = 0;
    this.sinceLines = new Map();
    if (opened) {
      const closing = replay === "missed" ? "end of missed lines" : "end of history";
      this.add("history", `${closing} (${linesWord(shown)})`, { replay });
    }
    this.release();
  }
}

// --- the connection ------------------------------------------------------

/** The WebSocket URL beside the page: ./ws, ws: or wss: as the page is. */
function socketUrl() {
  const url = new URL("ws", window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.search = "";
  url.hash = "";
  return url.href;
}

/** Why a WebSocket closed, in words. */
function closeReason(event, opened) {
  if (!opened) return "could not connect";
  if (event.reason) return event.reason;
  return event.code === 1006 ? "the connection dropped" : "the server closed the connection";
}

class Connection {
  constructor(url, { opened, line, closed }) {
    this.url = url;
    this.handlers = { opened, line, closed };
    this.socket = null;
    this.pending = "";
  }

  get open() { return this.socket !== null && this.socket.readyState === WebSocket.OPEN; }

  connect() {
    this.pending = "";
    const socket = new WebSocket(this.url);
    this.socket = socket;
    let opened = false;
    socket.addEventListener("open", () => {
      opened = true;
      this.handlers.opened();
    });
    socket.addEventListener("message", (event) => {
      if (typeof event.data !== "string") return;
      const parts = (this.pending + event.data).split("\r\n");
      this.pending = parts.pop();
      for (const part of parts) if (part) this.handlers.line(part);
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.handlers.closed(event, opened);
    });
  }

  send(lines) {
    if (!this.open) return false;
    this.socket.send(lines.map((line) => line.replace(/[\r\n]/g, " ")).join("\n"));
    return true;
  }

  close() {
    if (this.socket !== null) this.socket.close(1000);
  }
}

// --- the view -------------------------------------------------------------

const $ = (id) => document.getElementById(id);

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function pad(n) { return String(n).padStart(2, "0"); }

const MARKS = { join: "-->", part: "<--", rename: "--", info: "--", error: "!!", history: "", wall: "WALL" };

class View {
  constructor() {
    this.log = $("log");
    this.jump = $("jump");
    this.alerts = $("alerts");
    this.memberList = $("member-list");
    this.pinned = true;
    this.lastTop = 0;
    this.unseen = 0;          // lines below the view while scrolled up
    this.unread = 0;          // messages while the tab was hidden
    this.markPending = false; // the next unread message gets the "new" marker
    this.membersShown = "";
    this.followFrame = 0;
    this.log.addEventListener("scroll", () => this.scrolled(), { passive: true });
    this.jump.addEventListener("click", () => this.toBottom());
    new ResizeObserver(() => { if (this.pinned) this.follow(); }).observe(this.log);
    document.addEventListener("visibilitychange", () => this.visibility());
  }

  // --- lines ---

  render(record) {
    const row = element("div", `line k-${record.kind}`);
    if (record.own) row.classList.add("own");
    if (record.mention) row.classList.add("mention");
    if (record.replay) row.classList.add("replay");
    const date = new Date(record.when);
    const time = element("time", "ts", `${pad(date.getHours())}:${pad(date.getMinutes())}`);
    time.dateTime = record.iso || date.toISOString();
    time.title = date.toLocaleString();
    row.append(time);
    if (record.kind === "history") {
      row.append(element("span", "text", record.text));
      return row;
    }
    const text = element("span", "text");
    if (record.kind === "say" || record.kind === "tell-in" || record.kind === "tell-out") {
      const speaker = record.kind === "tell-out" ? record.ownNick : record.nick;
      const who = element("span", `who ${this.nickClass(speaker, record.own)}`, speaker);
      who.title = speaker;
      row.append(who);
      if (record.kind === "tell-in") text.append(element("span", "tag", "private"), " ");
      if (record.kind === "tell-out") text.append(element("span", "tag", `private to ${record.nick}`), " ");
    } else {
      const mark = element("span", "who mark", MARKS[record.kind] || "--");
      if (record.kind !== "wall") mark.setAttribute("aria-hidden", "true");
      row.append(mark);
    }
    if (record.kind === "wall" && record.nick) {
      text.append(element("span", `from ${this.nickClass(record.nick, record.own)}`, record.nick), ": ");
    }
    text.append(record.text);
    row.append(text);
    return row;
  }

  nickClass(nick, own) { return own ? "nick-own" : `nick-${nickColour(nick || "")}`; }

  add(record) {
    const row = this.render(record);
    const message = ["say", "tell-in", "tell-out", "wall"].includes(record.kind);
    const counts = message && !record.own && !record.replay;
    if (counts && document.hidden) {
      if (this.markPending) {
        this.markPending = false;
        for (const old of this.log.querySelectorAll(".unread-marker")) old.remove();
        this.log.append(element("div", "unread-marker", "new since you looked"));
      }
      this.unread += 1;
      this.title();
    }
    this.log.append(row);
    if (record.kind === "wall" && !record.replay) this.banner(record);
    this.trim();
    if (this.pinned) {
      this.follow();
    } else if (message) {
      this.unseen += 1;
      this.jump.textContent = this.unseen === 1 ? "1 new message ↓" : `${this.unseen} new messages ↓`;
      this.jump.hidden = false;
    }
  }

  /** Keep the newest MAX_LINES; while scrolled up, let a few more pile up,
   * then trim anyway, keeping the lines in view where they are. */
  trim() {
    const over = this.log.childElementCount - MAX_LINES;
    if (over <= 0 || (!this.pinned && over < 500)) return;
    if (this.pinned) {  // the view follows the bottom anyway: no need to measure
      for (let i = 0; i < over; i += 1) this.log.firstElementChild.remove();
      return;
    }
    const before = this.log.scrollHeight;
    for (let i = 0; i < over; i += 1) this.log.firstElementChild.remove();
    this.log.scrollTop -= before - this.log.scrollHeight;
  }

  clear() {
    this.log.replaceChildren();
    this.toBottom();
  }

  banner(record) {
    const box = element("div", "wall-banner");
    const who = record.nick ? `Alert from ${record.nick}` : "Server alert";
    box.append(element("strong", "", who), " ", element("span", "", record.text));
    const close = element("button", "dismiss", "×");
    close.type = "button";
    close.setAttribute("aria-label", "Dismiss the alert");
    close.addEventListener("click", () => box.remove());
    box.append(close);
    this.alerts.append(box);
    while (this.alerts.childElementCount > MAX_ALERTS) this.alerts.firstElementChild.remove();
  }

  // --- scrolling ---

  atBottom() { return this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 8; }

  /** Only the user scrolling up unpins the view: lines arriving between a
   * programmatic scroll and its event must not look like a scroll up. */
  scrolled() {
    const top = this.log.scrollTop;
    if (this.atBottom()) {
      this.pinned = true;
      this.unseen = 0;
      this.jump.hidden = true;
    } else if (top < this.lastTop - 1) {
      this.pinned = false;
    }
    this.lastTop = top;
  }

  /** Scroll to the newest line once the current burst of lines is in:
   * at the next frame, or in a hidden tab (no frames) at the next timer. */
  follow() {
    if (this.followFrame) return;
    const bottom = () => {
      this.followFrame = 0;
      this.log.scrollTop = this.log.scrollHeight;
      this.lastTop = this.log.scrollTop;
    };
    this.followFrame = document.hidden ? setTimeout(bottom, 0) : requestAnimationFrame(bottom);
  }

  toBottom() {
    this.pinned = true;
    this.unseen = 0;
    this.jump.hidden = true;
    this.follow();
  }

  // --- the tab title ---

  visibility() {
    if (document.hidden) {
      this.markPending = true;
    } else {
      this.unread = 0;
      this.title();
    }
  }

  title() { document.title = this.unread ? `(${this.unread}) chatd` : "chatd"; }

  // --- everything else: the bar, the member list, the forms ---

  update(session) {
    const linkText = {
      connecting: "connecting…",
      connected: "connected",
      lost: session.linkDetail ? `connection lost — ${session.linkDetail}` : "connection lost",
      closed: session.linkDetail ? `disconnected — ${session.linkDetail}` : "disconnected",
    }[session.link];
    const link = $("link");
    if (link.textContent !== linkText) link.textContent = linkText;
    link.dataset.state = session.link;
    document.body.dataset.link = session.link;
    const whoami = $("whoami");
    whoami.hidden = !session.loggedIn;
    const me = session.loggedIn ? `Logged in as ${session.nick}${session.isOper ? " (operator)" : ""}` : "";
    if (whoami.textContent !== me) whoami.textContent = me;
    $("login").hidden = !session.showLogin;
    $("say").hidden = session.showLogin;
    const error = $("login-error");
    if (error.textContent !== session.loginError) error.textContent = session.loginError;
    $("nick").setAttribute("aria-invalid", session.loginError ? "true" : "false");
    this.members(session);
  }

  members(session) {
    const shown = `${session.membersVersion} ${session.nick}`;
    if (shown === this.membersShown) return;
    this.membersShown = shown;
    const nicks = session.sortedMembers();
    this.memberList.replaceChildren(...nicks.map((nick) => {
      const own = session.isMe(nick);
      const item = element("li", this.nickClass(nick, own), nick);
      if (own) item.append(element("span", "you", " (you)"));
      return item;
    }));
    $("member-count").textContent = String(nicks.length);
    $("members-heading").textContent = `In the room (${nicks.length})`;
  }
}

// --- the input line: history and completion --------------------------------

class InputLine {
  constructor(input, nicks) {
    this.input = input;
    this.nicks = nicks;
    this.history = [];
    this.index = 0;
    this.draft = "";
    this.cycle = null;  // an ongoing Tab completion
    input.addEventListener("keydown", (event) => this.key(event));
    input.addEventListener("input", () => { this.cycle = null; });
  }

  remember(text) {
    if (text && this.history[this.history.length - 1] !== text) this.history.push(text);
    if (this.history.length > INPUT_HISTORY) this.history.shift();
    this.index = this.history.length;
    this.draft = "";
  }

  set(value) {
    this.input.value = value;
    this.input.setSelectionRange(value.length, value.length);
  }

  key(event) {
    if (event.isComposing || event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.key === "Tab" && !event.shiftKey) {
      if (this.complete()) event.preventDefault();
      return;
    }
    this.cycle = null;
    if (event.key === "ArrowUp" && this.index > 0) {
      if (this.index === this.history.length) this.draft = this.input.value;
      this.index -= 1;
      this.set(this.history[this.index]);
      event.preventDefault();
    } else if (event.key === "ArrowDown" && this.index < this.history.length) {
      this.index += 1;
      this.set(this.index === this.history.length ? this.draft : this.history[this.index]);
      event.preventDefault();
    }
  }

  complete() {
    const input = this.input;
    if (this.cycle === null) {
      const caret = input.selectionStart ?? input.value.length;
      const before = input.value.slice(0, caret);
      const [length, candidates] = completions(before, this.nicks());
      if (candidates.length === 0) return false;
      this.cycle = { start: caret - length, after: input.value.slice(caret), candidates, index: -1 };
    }
    const cycle = this.cycle;
    cycle.index = (cycle.index + 1) % cycle.candidates.length;
    const head = input.value.slice(0, cycle.start) + cycle.candidates[cycle.index];
    input.value = head + cycle.after;
    input.setSelectionRange(head.length, head.length);
    return true;
  }
}

// --- wiring -----------------------------------------------------------------

function stored() {
  try { return window.localStorage.getItem(NICK_STORE) || ""; } catch { return ""; }
}

function store(nick) {
  try { window.localStorage.setItem(NICK_STORE, nick); } catch { /* private mode: not remembered */ }
}

function main() {
  const view = new View();
  const connection = new Connection(socketUrl(), { opened, line, closed });
  let attempt = 0;
  let retryTimer = 0;
  let openedAt = 0;
  let stay = false;         // do not reconnect by ourselves (quit, idle timeout, refused)
  let userLogin = false;    // the login form was just used: focus the input after OK NICK
  let savedNick = "";
  let wasIn = false;
  let loginShown = true;

  const session = new Session({
    server: window.location.host,
    nick: stored(),
    send: (lines) => connection.send(lines),
    show: (record) => view.add({ ...record, ownNick: session.nick }),
    changed: () => refresh(),
  });

  function refresh() {
    view.update(session);
    if (session.loggedIn && session.nick !== savedNick) {
      savedNick = session.nick;
      store(session.nick);
    }
    if (session.loggedIn && !wasIn) {
      attempt = 0;
      if (userLogin) $("input").focus();
      userLogin = false;
    }
    wasIn = session.loggedIn;
    if (session.showLogin && !loginShown && !$("nick").value) $("nick").value = session.wantedNick;
    loginShown = session.showLogin;
  }

  function opened() {
    openedAt = Date.now();
    session.connected();
  }

  function line(text) {
    session.receive(text);
  }

  function closed(event, wasOpen) {
    const reason = closeReason(event, wasOpen);
    if (wasOpen) session.connectionLost(reason);
    // Timed out at the login box: wait for the user rather than come back to time out again.
    if (session.byeReason.startsWith("registration timeout")) stay = true;
    if (wasOpen && Date.now() - openedAt >= STABLE_MS) attempt = 0;
    if (event.code === 1008) {
      session.problem(`The server refused this page: ${event.reason || "policy"}.`);
      stay = true;
    }
    if (session.quitting || stay) {
      session.quitting = false;
      session.closed(stay ? "log in to connect again" : "");
      return;
    }
    schedule(reason);
  }

  function schedule(failure) {
    attempt += 1;
    const ceiling = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (attempt - 1));
    const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    const due = Date.now() + delay;
    session.retrying(delay, attempt);
    const tick = () => {
      const left = Math.max(0, Math.ceil((due - Date.now()) / 1000));
      session.linkDetail = `retrying in ${left} s (${failure})`;
      refresh();
    };
    tick();
    clearInterval(retryTimer);
    retryTimer = setInterval(() => {
      if (Date.now() >= due) reconnect();
      else tick();
    }, 250);
  }

  function reconnect() {
    clearInterval(retryTimer);
    retryTimer = 0;
    stay = false;
    session.link = "connecting";
    session.linkDetail = "";
    refresh();
    connection.connect();
  }

  window.addEventListener("online", () => { if (retryTimer) reconnect(); });

  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    userLogin = true;
    if (session.login($("nick").value) && !connection.open && !connection.socket) {
      session.autoLogin = true;
      reconnect();
    }
  });

  const inputLine = new InputLine($("input"), () => session.sortedMembers());
  $("say").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("input");
    const text = input.value;
    const outcome = parseInput(text);
    inputLine.remember(text);
    if (session.submit(text)) {
      input.value = "";
      if (outcome && outcome.local === "clear") view.clear();
      if (outcome && outcome.quit) {
        setTimeout(() => { if (session.quitting) connection.close(); }, QUIT_WAIT_MS);
      }
    }
    view.toBottom();
    input.focus();
  });

  const toggle = $("members-toggle");
  const setMembers = (open) => {
    $("members").hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    document.body.classList.toggle("members-open", open);
  };
  setMembers(!window.matchMedia("(max-width: 640px)").matches);
  toggle.addEventListener("click", () => setMembers($("members").hidden));

  $("nick").value = session.wantedNick;
  refresh();
  connection.connect();
  $("nick").focus();
}

if (typeof document !== "undefined") main();
