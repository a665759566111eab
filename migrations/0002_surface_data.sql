-- What a chat surface needs to find a request's conversation again: Slack's channel,
-- message ts and response_url, Discord's interaction token. JSON, owned by the surface.
ALTER TABLE requests ADD COLUMN surface_data TEXT;
