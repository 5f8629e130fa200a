/*
 * faye-online's browser client. Needs Faye's browser client (Faye.Client)
 * loaded first; no other library.
 *
 *   var faye = Faye.init_online_client({
 *     faye_url: "http://localhost:9292/faye", client_opts: {},
 *     auth_opts: { room_channel: "/classes/4", time_channel: "/courses/5/lessons/1",
 *                  current_user: { uid: 470700, uname: "mvj3" } } });
 *
 * Returns the Faye.Client. It sends auth_opts with its /meta/connect and
 * /meta/subscribe messages, and tells the server when the page really goes
 * away (pagehide), not when the user merely starts to close it; a page
 * restored from the back/forward cache joins again.
 *
 * When the server refuses the page's identity (a token that expired, say,
 * met by a server that restarted), the client stops rather than handshake
 * again and again, and says so: `faye.bind("refused", function (e) {...})`
 * (e.error, e.renewing), and a "faye-online:refused" event on window. To
 * stay online for days, give it a way to get a fresh identity from the
 * app, used a little before auth_opts.expires and on a refusal:
 *
 *   auth_url: "/faye_online/auth"       fetched (GET, with the page's
 *                                       cookies), answering auth_opts as JSON
 *   renew_auth: function () { ... }     returning auth_opts or a Promise of
 *                                       them (or calling its argument with them)
 *
 * A renewed identity is announced with faye.bind("renewed", ...).
 *
 * Private channels (the server's private: patterns) take a token the app
 * signed for the channel and the user (FayeOnline.subscribe_token):
 *
 *   channel_tokens: { "/chats/12": "<token>" }     in the options, or
 *   faye.faye_online_grant("/chats/12", token)     before subscribing
 *
 * Engaged time: the client tells the server when the page's state
 * changes, and nothing else (never what was typed or clicked):
 * "active" (shown and in use), "idle" (shown, but no input for
 * idle_after seconds, default 120, and no <video> or <audio> playing) or
 * "hidden" (another tab or a minimized window in front). Options:
 *
 *   page_state: false       send nothing (engaged time is then not measured)
 *   idle_after: 120         seconds without input before the page is idle
 *   confirm_after: 600      seconds of idleness before a "still_there" event,
 *                           which a page can use to ask; any input (or
 *                           faye.faye_online_active()) makes it active again
 *
 * Each change is announced with faye.bind("state", ...) ({state}) and a
 * "faye-online:state" event on window.
 */
(function (root) {
  "use strict";

  // Loaded twice (Turbo evaluates the scripts of each page it renders, and
  // the Rails helper writes them into the page): the first stays, with the
  // clients it made. Faye's client, loaded again before it, made a new
  // window.Faye: it gets init_online_client too.
  if (root.FayeOnline && typeof root.FayeOnline.init_online_client === "function") {
    if (root.Faye && !root.Faye.init_online_client) root.Faye.init_online_client = root.FayeOnline.init_online_client;
    return;
  }

  var CHANNEL = /^(\/[A-Za-z0-9_-]+)+$/;

  function fail(message) {
    throw new Error("faye-online: " + message);
  }

  function checkOptions(options) {
    if (!options || typeof options !== "object") fail("init_online_client needs an options object");
    if (typeof options.faye_url !== "string" || options.faye_url === "") fail("faye_url must be the server's URL, e.g. http://localhost:9292/faye");
    checkAuth(options.auth_opts);
    if (options.client_opts !== undefined && (options.client_opts === null || typeof options.client_opts !== "object")) fail("client_opts must be an object");
    if (options.auth_url !== undefined && (typeof options.auth_url !== "string" || options.auth_url === "")) fail("auth_url must be the URL of the app's fresh auth_opts");
    if (options.renew_auth !== undefined && typeof options.renew_auth !== "function") fail("renew_auth must be a function that gives fresh auth_opts");
    ["idle_after", "confirm_after"].forEach(function (key) {
      if (options[key] !== undefined && !(typeof options[key] === "number" && options[key] > 0)) fail(key + " must be a number of seconds above 0");
    });
  }

  function checkAuth(auth) {
    if (!auth || typeof auth !== "object") fail("auth_opts must be an object with room_channel, time_channel and current_user");
    ["room_channel", "time_channel"].forEach(function (key) {
      if (typeof auth[key] !== "string" || !CHANNEL.test(auth[key]) || auth[key].indexOf("/meta/") === 0) {
        fail("auth_opts." + key + " must be a channel name such as /classes/4 (letters, digits, _, - and single slashes)");
      }
    });
    var user = auth.current_user;
    if (!user || typeof user !== "object") fail("auth_opts.current_user must be an object with uid and uname");
    if (typeof user.uid !== "number" || user.uid <= 0 || Math.floor(user.uid) !== user.uid) fail("auth_opts.current_user.uid must be a positive integer");
    if (typeof user.uname !== "string" || user.uname.trim() === "") fail("auth_opts.current_user.uname must be a non-empty string");
  }

  // A function giving a Promise of fresh auth_opts, from the options; null
  // when the page gave no way to renew.
  function renewer(options) {
    if (typeof options.renew_auth === "function") {
      return function () {
        return new Promise(function (resolve, reject) {
          var given = options.renew_auth(resolve);
          if (given && typeof given.then === "function") given.then(resolve, reject);
          else if (given !== undefined) resolve(given);
        });
      };
    }
    if (typeof options.auth_url === "string") {
      return function () {
        return root.fetch(options.auth_url, { credentials: "same-origin", headers: { Accept: "application/json" } })
          .then(function (response) {
            if (!response.ok) throw new Error("auth_url answered " + response.status);
            return response.json();
          });
      };
    }
    return null;
  }

  function initOnlineClient(options) {
    var Faye = root.Faye;
    if (!Faye || typeof Faye.Client !== "function") fail("load Faye's browser client (faye-browser-min.js) before faye-online.js");
    checkOptions(options);
    var auth = JSON.parse(JSON.stringify(options.auth_opts));
    var client = new Faye.Client(options.faye_url, options.client_opts || {});
    var renew = renewer(options);
    var renewedAt = 0;
    var renewalTimer = null;

    function tell(name, detail) {
      client.trigger(name, detail);
      if (typeof root.dispatchEvent === "function" && typeof root.CustomEvent === "function") {
        root.dispatchEvent(new root.CustomEvent("faye-online:" + name, { detail: detail }));
      }
    }

    // Takes fresh auth_opts from the app for every later message.
    function renewNow() {
      renewedAt = Date.now();
      return renew().then(function (fresh) {
        checkAuth(fresh);
        auth = JSON.parse(JSON.stringify(fresh));
        scheduleRenewal();
        tell("renewed", { expires: auth.expires });
      });
    }

    // Renews a little before the token expires (a tenth of its life, at
    // most a minute): the server checks it again only when the page has to
    // join anew, but then it must be valid.
    function scheduleRenewal() {
      if (renewalTimer) root.clearTimeout(renewalTimer);
      renewalTimer = null;
      if (!renew || typeof auth.expires !== "number") return;
      var left = auth.expires * 1000 - Date.now();
      var margin = Math.min(60000, Math.max(500, left / 10));
      renewalTimer = root.setTimeout(function () {
        renewNow().catch(function (error) {
          tell("renew_failed", { error: String(error) });
          // Try again later; a refusal would also renew.
          renewalTimer = root.setTimeout(scheduleRenewal, 30000);
        });
      }, Math.max(0, left - margin));
    }
    scheduleRenewal();

    // The server refused this identity and advised the client to stop. With
    // a way to renew (and not just after a renewal), take a fresh identity
    // and join again; otherwise stop, and say so.
    function refused(message, callback) {
      var renewing = !!renew && Date.now() - renewedAt > 10000;
      tell("refused", { error: message.error, renewing: renewing });
      if (!renewing && pageState) pageState.stop();
      if (!renewing) return callback(message);
      renewNow().then(function () {
        message.advice = { reconnect: "handshake", interval: 0 };
        callback(message);
      }, function (error) {
        tell("renew_failed", { error: String(error) });
        callback(message);
      });
    }

    // Tokens for private channels (FayeOnline.subscribe_token), sent with
    // the subscriptions to them.
    var channelTokens = {};
    Object.keys(options.channel_tokens || {}).forEach(function (channel) {
      channelTokens[channel] = String(options.channel_tokens[channel]);
    });
    client.faye_online_grant = function (channel, token) {
      if (typeof channel !== "string" || !CHANNEL.test(channel)) fail("faye_online_grant needs a channel name such as /chats/12");
      if (typeof token !== "string" || token === "") fail("faye_online_grant needs the app's token for " + channel);
      channelTokens[channel] = token;
    };

    var clientId = null;
    var pageState = trackPage(client, options, tell);
    client.addExtension({
      outgoing: function (message, callback) {
        if (message.channel === "/meta/connect" || message.channel === "/meta/subscribe") message.auth = auth;
        if (message.channel === "/meta/connect" && pageState) pageState.connected();
        if (message.channel === "/meta/subscribe") {
          var tokens = null;
          [].concat(message.subscription).forEach(function (channel) {
            if (channelTokens[channel]) (tokens = tokens || {})[channel] = channelTokens[channel];
          });
          if (tokens) {
            message.ext = message.ext || {};
            message.ext.faye_online_channel_tokens = tokens;
          }
        }
        callback(message);
      },
      incoming: function (message, callback) {
        if (message.channel === "/meta/handshake" && message.successful) {
          clientId = message.clientId;
          // A new clientId starts with no state on the server.
          if (pageState) pageState.resend();
        }

        if (message.channel === "/meta/connect" && message.successful === false &&
            message.advice && message.advice.reconnect === "none") return refused(message, callback);
        callback(message);
      }
    });

    // Faye's client disconnects on `beforeunload`, which also fires when the
    // user starts to close the page and then cancels: the page would stay
    // open but offline. Leave on `pagehide` instead, which fires only when
    // the page really goes away (closed, navigated from, or put in the
    // back/forward cache).
    client.disable("autodisconnect");
    if (root.addEventListener) {
      root.addEventListener("pagehide", function () {
        if (!leave(options.faye_url, clientId)) client.disconnect();
      });
      // A page restored from the back/forward cache polls again with the
      // clientId it left with; the server answers that it is unknown, and
      // Faye's client handshakes again, which rejoins and resubscribes.
      root.addEventListener("pageshow", function (event) {
        if (event.persisted) client.connect();
      });
    }
    // For rosters sharing this client: a page rendered later carries a
    // fresher token for the same identity, used from then on.
    client.faye_online_use_auth = function (fresh) {
      checkAuth(fresh);
      if (typeof fresh.expires === "number" && typeof auth.expires === "number" && fresh.expires <= auth.expires) return;
      auth = JSON.parse(JSON.stringify(fresh));
      scheduleRenewal();
    };
    if (root.FayeOnline) root.FayeOnline.client = client;
    return client;
  }

  var PAGE_STATE_CHANNEL = "/faye-online/state";
  var INPUT_EVENTS = ["pointerdown", "pointermove", "keydown", "wheel", "touchstart", "scroll"];

  // Follows the page's state (active, idle, hidden) and publishes each
  // change on PAGE_STATE_CHANNEL: "idle" and "hidden" at once, "active"
  // after a short debounce. Returns null when turned off or outside a
  // browser.
  function trackPage(client, options, tell) {
    var doc = root.document;
    if (options.page_state === false || !doc || !root.addEventListener) return null;
    var idleAfter = (options.idle_after || 120) * 1000;
    var confirmAfter = options.confirm_after ? options.confirm_after * 1000 : null;
    var lastInput = Date.now();
    var sent = null, shown = null, asked = false;
    var sendTimer = null, idleTimer = null, confirmTimer = null, retryTimer = null;

    function mediaPlaying() {
      return Array.prototype.some.call(doc.querySelectorAll("video, audio"), function (media) {
        return !media.paused && !media.ended && media.readyState > 2;
      });
    }

    function current() {
      if (doc.visibilityState === "hidden") return "hidden";
      if (Date.now() - lastInput >= idleAfter && !mediaPlaying()) return "idle";
      return "active";
    }

    var failures = 0, stopped = false, connected = false;
    function send(state) {
      if (stopped) return;
      sent = state;
      // Sent once the page's identity is on its way (its first
      // /meta/connect sent); until then the state waits.
      if (!connected) return;
      var publication = client.publish(PAGE_STATE_CHANNEL, { state: state });
      publication.callback(function () { failures = 0; });
      publication.errback(function () {
        // Refused (too many, the server busy, or sent before the connect
        // that shows the identity): say it again later, a few times.
        if (sent === state) sent = null;
        failures += 1;
        if (failures > 5 || retryTimer) return;
        retryTimer = root.setTimeout(function () { retryTimer = null; evaluate(); }, 1000 * failures);
      });
    }

    function evaluate() {
      var state = current();
      if (idleTimer) root.clearTimeout(idleTimer);
      idleTimer = state === "active" ? root.setTimeout(evaluate, Math.max(50, idleAfter - (Date.now() - lastInput))) : null;
      if (state === "idle" && confirmAfter && !asked && !confirmTimer) {
        confirmTimer = root.setTimeout(function () {
          confirmTimer = null;
          if (current() !== "idle") return;
          asked = true;
          tell("still_there", { idle_ms: Date.now() - lastInput });
        }, Math.max(0, confirmAfter - (Date.now() - lastInput - idleAfter)));
      }
      if (state !== shown) {
        shown = state;
        tell("state", { state: state });
      }
      if (state === sent) {
        if (sendTimer) root.clearTimeout(sendTimer);
        sendTimer = null;
        return;
      }
      // Leaving "active" is told at once (a hidden tab's timers are
      // throttled, and engaged time should end when the page stopped
      // being used); coming back after a short debounce.
      if (state !== "active") {
        if (sendTimer) root.clearTimeout(sendTimer);
        sendTimer = null;
        return send(state);
      }
      if (!sendTimer) {
        sendTimer = root.setTimeout(function () {
          sendTimer = null;
          var now = current();
          if (now !== sent) send(now);
        }, 300);
      }
    }

    function input() {
      lastInput = Date.now();
      asked = false;
      if (confirmTimer) root.clearTimeout(confirmTimer);
      confirmTimer = null;
      if (shown !== "active" || sent !== "active") evaluate();
    }

    INPUT_EVENTS.forEach(function (name) {
      root.addEventListener(name, input, { capture: true, passive: true });
    });
    root.addEventListener("focus", input);
    doc.addEventListener("visibilitychange", function () {
      if (doc.visibilityState === "visible") lastInput = Date.now();
      evaluate();
    });
    ["play", "pause", "ended"].forEach(function (name) {
      doc.addEventListener(name, evaluate, true);
    });
    client.faye_online_active = input;
    // After the page has bound its listeners to the client it was given.
    root.setTimeout(evaluate, 0);
    return {
      // The server refused the page: nothing more is sent.
      stop: function () { stopped = true; },
      // The client sent its connect, with the page's identity: the state
      // that waited goes a moment later, behind it (a long-polling
      // connect is answered only when the poll ends).
      connected: function () {
        if (connected) return;
        connected = true;
        root.setTimeout(function () {
          if (sent !== null) send(current());
        }, 50);
      },
      // After a new clientId: its state again, now and once more a moment
      // later (the first may reach a process before the connect did).
      resend: function () {
        stopped = false;
        connected = false;
        failures = 0;
        sent = null;
        evaluate();
        root.setTimeout(function () {
          if (sent !== null) send(current());
        }, 2000);
      }
    };
  }

  // Tells the server that a client leaves, with a beacon: a request made
  // while a page unloads may be cancelled with it, a beacon is sent even so.
  // The body is a form (message=[...]), which Faye accepts from any origin
  // without a preflight. Returns false when no beacon could be queued.
  function leave(url, clientId) {
    var nav = root.navigator;
    if (!clientId || !nav || typeof nav.sendBeacon !== "function" || typeof root.URLSearchParams !== "function") return false;
    var message = [{ channel: "/meta/disconnect", clientId: clientId, id: "faye-online-leave",
                     ext: { faye_online_leave: true } }];
    try {
      return nav.sendBeacon(url, new root.URLSearchParams({ message: JSON.stringify(message) }));
    } catch (e) {
      return false;
    }
  }

  // One client per page and identity, shared by the rosters that name it,
  // and left (disconnected) once no roster in the page uses it any more.
  // With Turbo, whose visits swap the page's body without unloading the
  // page, a visit to a page without the roster leaves the room, and a visit
  // to another page with it keeps the same client: the new roster takes it
  // before the grace below runs out.
  var shared = {};
  var RELEASE_GRACE_MS = 500;

  // Rosters share a client when they name the same server, room, lesson
  // and user: a page rendered again writes a fresh token for the same
  // identity, and keeps the client its first render made.
  function acquireClient(fayeUrl, authJson) {
    var auth = JSON.parse(authJson);
    var user = auth && auth.current_user || {};
    var key = JSON.stringify([fayeUrl, auth && auth.room_channel, auth && auth.time_channel, user.uid, user.uname]);
    var entry = shared[key];
    if (!entry) {
      entry = shared[key] = { key: key, users: 0, timer: null,
        client: initOnlineClient({ faye_url: fayeUrl, auth_opts: auth }) };
    } else {
      entry.client.faye_online_use_auth(auth);
    }
    if (entry.timer) root.clearTimeout(entry.timer);
    entry.timer = null;
    entry.users += 1;
    return entry;
  }

  function releaseClient(entry) {
    entry.users -= 1;
    if (entry.users > 0 || entry.timer) return;
    entry.timer = root.setTimeout(function () {
      entry.timer = null;
      if (entry.users > 0 || shared[entry.key] !== entry) return;
      delete shared[entry.key];
      entry.client.disconnect();
      if (root.FayeOnline.client === entry.client) root.FayeOnline.client = null;
    }, RELEASE_GRACE_MS);
  }

  // <faye-online-roster room="/classes/4"></faye-online-roster>
  //
  // The users online in a room, kept up to date from <room>/user_changes:
  // the whole list when it subscribes, then each join and leave. It joins
  // with faye-url and auth (the JSON of auth_opts, as the Rails helper
  // faye_online_roster writes them), or else uses the page's client (the
  // last one init_online_client made). Taken out of the page (a Turbo
  // visit elsewhere), it leaves the room its client joined. It renders into itself, no shadow DOM, so
  // the app's CSS styles it: a <ul> of <li data-uid="...">name</li>, or,
  // when it holds a <template>, a copy of the template per user with
  // [data-field="uname"] and [data-field="uid"] filled in; a user whose
  // pages report their state has it in data-state (active, idle,
  // hidden), for the app's CSS. Its `count`
  // attribute follows the count, and each change fires
  // "faye-online:roster" with {count, users}.
  function defineRoster() {
    if (!root.customElements || typeof root.HTMLElement !== "function" ||
        root.customElements.get("faye-online-roster")) return;

    class Roster extends root.HTMLElement {
      connectedCallback() {
        var room = this.getAttribute("room");
        if (!room || !CHANNEL.test(room)) {
          root.console && root.console.warn("faye-online-roster: room must be a channel such as /classes/4");
          return;
        }
        var url = this.getAttribute("faye-url"), auth = this.getAttribute("auth");
        if (url && auth) this._shared = acquireClient(url, auth);
        var client = this._shared ? this._shared.client : root.FayeOnline.client;
        if (!client) {
          root.console && root.console.warn("faye-online-roster: give it faye-url and auth, or call init_online_client first");
          return;
        }
        this._template = this._template || this.querySelector("template");
        this._users = {};
        var self = this;
        this._subscription = client.subscribe(room + "/user_changes", function (change) { self._apply(change); });
      }

      disconnectedCallback() {
        if (this._subscription) this._subscription.cancel();
        this._subscription = null;
        if (this._shared) releaseClient(this._shared);
        this._shared = null;
      }

      _apply(change) {
        var users = this._users;
        if (change.users) {
          this._users = users = {};
          change.users.forEach(function (u) { users[u.uid] = u; });
        }
        (change.joined || []).forEach(function (u) { users[u.uid] = u; });
        (change.left || []).forEach(function (u) { delete users[u.uid]; });
        (change.state || []).forEach(function (u) {
          if (users[u.uid]) users[u.uid] = Object.assign({}, users[u.uid], { state: u.state });
        });
        var list = Object.keys(users).map(function (uid) { return users[uid]; })
          .sort(function (a, b) { return a.uid - b.uid; });
        this.setAttribute("count", String(change.count));
        this._render(list);
        this.dispatchEvent(new root.CustomEvent("faye-online:roster", { detail: { count: change.count, users: list } }));
      }

      _render(list) {
        var doc = this.ownerDocument, template = this._template;
        var container = doc.createElement(template ? "div" : "ul");
        container.className = "faye-online-roster";
        list.forEach(function (user) {
          var item;
          if (template) {
            item = doc.importNode(template.content, true).firstElementChild || doc.createElement("div");
            Array.prototype.forEach.call(item.querySelectorAll("[data-field]"), function (field) {
              var key = field.getAttribute("data-field");
              if (key === "uname" || key === "uid") field.textContent = String(user[key]);
            });
          } else {
            item = doc.createElement("li");
            item.textContent = user.uname;
          }
          item.setAttribute("data-uid", String(user.uid));
          if (user.state) item.setAttribute("data-state", user.state);
          container.appendChild(item);
        });
        this.textContent = "";
        if (template) this.appendChild(template);
        this.appendChild(container);
      }
    }
    root.customElements.define("faye-online-roster", Roster);
  }

  root.FayeOnline = { init_online_client: initOnlineClient };
  if (root.Faye) root.Faye.init_online_client = initOnlineClient;
  defineRoster();
})(typeof window !== "undefined" ? window : this);
