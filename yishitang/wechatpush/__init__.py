"""WeChat's message push (消息推送): the URL WeChat calls with events, signature checked."""
