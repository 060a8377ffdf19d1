export {
  maxFailedTasks,
  runEndBody,
  runPageUrl,
  slackEscape,
  type FailedTask,
  type RunEndBody,
  type RunSummary,
} from "./message.js";
export {
  deliverWebhook,
  WebhookNotifier,
  type DeliveryOptions,
  type DeliveryResult,
  type NotificationStatus,
  type NotifyLog,
} from "./deliver.js";
export {
  configuredWebhookSecrets,
  DirectoryWebhookSecrets,
  FileWebhookSecrets,
  WebhookSecretChain,
  WebhookSecretError,
  type WebhookSecrets,
} from "./secrets.js";
