"""Development-only tools: the demo district, issue histories, the load generator, a fake WeChat
and the embedded database. The app (`create_app`) never imports this package."""
