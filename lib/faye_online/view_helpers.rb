# frozen_string_literal: true

require "json"
require "uri"

module FayeOnline
  # View helpers a Rails app gets from the engine.
  module ViewHelpers
    # A live roster of +room+'s users for the current user, with nothing
    # else on the page:
    #
    #   <%= faye_online_roster(room: "/classes/4", lesson: "/courses/5/lessons/1",
    #                          user: { uid: current_user.id, uname: current_user.name }) %>
    #
    # writes a <faye-online-roster> holding a signed identity for +user+
    # (a Hash with uid and uname, or an object answering id and name),
    # which joins the room and the lesson and shows who is online, and,
    # once per page, the script that defines it, from the Faye server
    # (faye_url: in config/faye_online.yml, or FAYE_URL). A block gives the
    # element's content, such as a <template> for each user:
    #
    #   <%= faye_online_roster(room: @room, lesson: @lesson, user: current_user, class: "roster") do %>
    #     <template><span class="user" data-field="uname"></span></template>
    #   <% end %>
    #
    # Other keyword arguments become the element's HTML attributes. With
    # Turbo, a visit to another page with the roster keeps the same client;
    # a visit to a page without it leaves the room.
    def faye_online_roster(room:, lesson:, user:, expires_in: 12 * 3600, faye_url: FayeOnline.configuration.faye_url,
                           **attributes, &block)
      raise ArgumentError, "faye_online_roster needs the Faye server's URL: faye_url: in config/faye_online.yml or FAYE_URL" if
        faye_url.to_s.empty?

      uid, uname = faye_online_user(user)
      auth = FayeOnline.auth_opts(uid: uid, uname: uname, room_channel: room, time_channel: lesson,
                                  expires_in: expires_in)
      content = block ? capture(&block) : nil
      roster = content_tag("faye-online-roster", content,
                           attributes.merge(room: room, "faye-url": faye_url, auth: JSON.generate(auth)))
      safe_join([faye_online_client_script(faye_url), roster])
    end

    # The <script> that loads faye-online's browser client (with Faye's)
    # from the Faye server, once per page; nothing the second time.
    def faye_online_client_script(faye_url = FayeOnline.configuration.faye_url)
      return "".html_safe if @faye_online_client_script_written

      @faye_online_client_script_written = true
      content_tag(:script, nil, src: faye_online_client_script_url(faye_url))
    end

    private

    # The bundle beside the Faye mount: https://host/realtime/faye gives
    # https://host/realtime/faye-online/client.js (a server behind a proxy
    # that strips a prefix serves it at /faye-online/client.js).
    def faye_online_client_script_url(faye_url)
      URI.join(faye_url.to_s.chomp("/"), ClientScripts::BUNDLE.delete_prefix("/")).to_s
    end

    def faye_online_user(user)
      if user.respond_to?(:to_hash)
        hash = user.to_hash.transform_keys(&:to_s)
        [hash["uid"], hash["uname"]]
      elsif user.respond_to?(:id) && user.respond_to?(:name)
        [user.id, user.name]
      else
        raise ArgumentError, "faye_online_roster: user must be a Hash with uid and uname, or answer id and name"
      end
    end
  end
end
