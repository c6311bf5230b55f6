// cobro on AWS, the CDK way: the same resources as template.yaml (SAM), with cargo-lambda-cdk's
// RustFunction building each function's binary from the Cargo workspace. test/parity.test.ts
// checks the two stay the same system.
import * as path from 'node:path';
import { ArnFormat, CfnOutput, CfnParameter, Duration, RemovalPolicy, Size, Stack, StackProps, TimeZone } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventsTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { RustFunction } from 'cargo-lambda-cdk';
import { Construct } from 'constructs';
import { Settings } from './settings';

/** The Cargo workspace root (infra/cdk/../..), from dist/lib/ or lib/. */
export const WORKSPACE_MANIFEST = path.resolve(__dirname, __dirname.includes(`${path.sep}dist${path.sep}`) ? '../../../..' : '../../..', 'Cargo.toml');

/** The metadata key naming each function's binary (what `cargo lambda build --bin` builds). */
export const BINARY_METADATA = 'cobro:binary';

const DLQ_RETENTION = Duration.days(14);

export interface CobroStackProps extends StackProps {
  readonly settings: Settings;
}

/** What a function may do on the table: the operations its code calls, on the indexes if queried. */
interface TableAccess {
  readonly actions: string[];
  readonly indexes: boolean;
}

interface FunctionSpec {
  readonly id: string;
  readonly name: string;
  readonly description: string;
  readonly timeout?: Duration;
  readonly memorySize?: number;
  readonly ephemeralStorageSize?: Size;
  readonly environment?: Record<string, string>;
  readonly table: TableAccess;
}

export class CobroStack extends Stack {
  /** The functions by logical id prefix (Webhook, Sender, …) with their short names. */
  readonly functions: Record<string, { fn: lambda.Function; name: string }> = {};

  constructor(scope: Construct, id: string, props: CobroStackProps) {
    super(scope, id, props);
    const s = props.settings;
    const name = (suffix: string) => `cobro-${s.stage}-${suffix}`;
    const secretsArn = this.formatArn({
      service: 'secretsmanager',
      resource: 'secret',
      resourceName: `cobro/${s.stage}/*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });

    // A parameter, as in template.yaml, so the key never lands in the synthesized template.
    const stripeSecretKey = new CfnParameter(this, 'StripeSecretKey', {
      type: 'String',
      noEcho: true,
      default: '',
      description: "Stripe secret key for payment links (Checkout Sessions); empty means tenants' own pay pages only.",
    });

    // --- Secrets --------------------------------------------------------------------------------
    const whatsAppSecret = new secretsmanager.Secret(this, 'WhatsAppSecret', {
      secretName: `cobro/${s.stage}/whatsapp`,
      description: 'WhatsApp Cloud API access token, Meta app secret and webhook verify token (JSON)',
      generateSecretString: {
        secretStringTemplate: JSON.stringify({ access_token: '', app_secret: '' }),
        generateStringKey: 'verify_token',
        passwordLength: 32,
        excludePunctuation: true,
      },
    });

    // --- State ----------------------------------------------------------------------------------
    const table = new dynamodb.Table(this, 'CobroTable', {
      tableName: `cobro-${s.stage}`,
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      deletionProtection: true,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      timeToLiveAttribute: 'ttl',
      removalPolicy: RemovalPolicy.RETAIN,
    });
    table.addGlobalSecondaryIndex({
      indexName: 'gsi1',
      partitionKey: { name: 'gsi1pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'gsi1sk', type: dynamodb.AttributeType.STRING },
    });
    // Sparse: only items that need a decision carry duepk/duesk.
    table.addGlobalSecondaryIndex({
      indexName: 'due',
      partitionKey: { name: 'duepk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'duesk', type: dynamodb.AttributeType.STRING },
    });

    // Raw webhook bodies (Meta has no replay API) and media debtors send (payment receipts).
    const blobs = new s3.Bucket(this, 'BlobBucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      versioned: true,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        { id: 'raw-deliveries', prefix: 'webhooks/', expiration: Duration.days(90), noncurrentVersionExpiration: Duration.days(7) },
        { id: 'raw-sms', prefix: 'inbound/', expiration: Duration.days(90), noncurrentVersionExpiration: Duration.days(7) },
        { id: 'media', prefix: 'media/', expiration: Duration.days(730), noncurrentVersionExpiration: Duration.days(7) },
        { id: 'incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(2) },
      ],
    });

    const bus = new events.EventBus(this, 'CobroBus', { eventBusName: `cobro-${s.stage}` });

    // --- Queues ---------------------------------------------------------------------------------
    const deadLetterQueue = (id: string, suffix: string) =>
      new sqs.Queue(this, id, {
        queueName: name(`${suffix}-dlq`),
        retentionPeriod: DLQ_RETENTION,
        encryption: sqs.QueueEncryption.SQS_MANAGED,
      });
    const scheduleDlq = deadLetterQueue('ScheduleDeadLetterQueue', 'schedule');
    const outboundDlq = deadLetterQueue('OutboundDeadLetterQueue', 'outbound');
    const inboundDlq = deadLetterQueue('InboundDeadLetterQueue', 'inbound');
    const paymentsDlq = deadLetterQueue('PaymentsDeadLetterQueue', 'payments');
    const alertDlq = deadLetterQueue('AlertDeadLetterQueue', 'alert');
    const outbound = new sqs.Queue(this, 'OutboundQueue', {
      queueName: name('outbound'),
      // Six times the sender's timeout, as AWS advises for Lambda consumers.
      visibilityTimeout: Duration.seconds(360),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      deadLetterQueue: { queue: outboundDlq, maxReceiveCount: 5 },
    });
    const inbound = new sqs.Queue(this, 'InboundQueue', {
      queueName: name('inbound'),
      visibilityTimeout: Duration.seconds(180),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      deadLetterQueue: { queue: inboundDlq, maxReceiveCount: 5 },
    });

    // --- Topics ---------------------------------------------------------------------------------
    // AWS services cannot publish to a topic encrypted with the AWS-managed SNS key: the stack's
    // own key lets CloudWatch (this account only), EventBridge and End User Messaging SMS do so.
    // EventBridge's KMS requests carry no aws:SourceAccount: a condition on it would drop them.
    const topicKey = new kms.Key(this, 'TopicKey', {
      description: `cobro ${s.stage} SNS topics (alarms, inbound SMS)`,
      enableKeyRotation: true,
    });
    const publish = ['kms:Decrypt', 'kms:GenerateDataKey*'];
    topicKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'Alarms',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: publish,
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': this.account } },
      }),
    );
    topicKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'EventsAndSms',
        principals: [new iam.ServicePrincipal('events.amazonaws.com'), new iam.ServicePrincipal('sms-voice.amazonaws.com')],
        actions: publish,
        resources: ['*'],
      }),
    );
    // Two-way SMS publishes inbound messages here (the phone number's two-way channel).
    const inboundSms = new sns.Topic(this, 'InboundSmsTopic', { topicName: name('inbound-sms'), masterKey: topicKey });
    // End User Messaging SMS publishes as its service principal (no TwoWayChannelRole is set).
    inboundSms.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'TwoWaySms',
        principals: [new iam.ServicePrincipal('sms-voice.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [inboundSms.topicArn],
        conditions: { StringEquals: { 'aws:SourceAccount': this.account } },
      }),
    );
    inboundSms.addSubscription(new subscriptions.SqsSubscription(inbound, { rawMessageDelivery: false, deadLetterQueue: inboundDlq }));
    const alarmTopic = new sns.Topic(this, 'AlarmTopic', { topicName: name('alarms'), masterKey: topicKey });
    if (s.alarmEmail) {
      alarmTopic.addSubscription(new subscriptions.EmailSubscription(s.alarmEmail));
    }
    alarmTopic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'Alarms',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [alarmTopic.topicArn],
        conditions: { StringEquals: { 'aws:SourceAccount': this.account } },
      }),
    );

    // --- Functions ------------------------------------------------------------------------------
    const common: Record<string, string> = {
      COBRO_STAGE: s.stage,
      COBRO_LOG: s.logLevel,
      RUST_LOG: s.logLevel,
      COBRO_TABLE: table.tableName,
      COBRO_EVENT_BUS: bus.eventBusName,
      COBRO_OUTBOUND_QUEUE_URL: outbound.queueUrl,
      COBRO_CHANNEL: 'sandbox',
    };
    const whatsApp = {
      COBRO_WHATSAPP_SECRET_ARN: whatsAppSecret.secretArn,
      COBRO_SECRETS_PREFIX: `cobro/${s.stage}/`,
    };
    const stripe = {
      STRIPE_SECRET_KEY: stripeSecretKey.valueAsString,
      STRIPE_SUCCESS_URL: s.stripeSuccessUrl,
      STRIPE_CANCEL_URL: s.stripeCancelUrl,
    };
    const rw = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'];
    const fn = (spec: FunctionSpec): lambda.Function => {
      const functionName = name(spec.name);
      const binary = `cobro-${spec.name}`;
      const logGroup = new logs.LogGroup(this, `${spec.id}LogGroup`, {
        logGroupName: `/aws/lambda/${functionName}`,
        retention: s.logRetentionDays,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      const f = new RustFunction(this, `${spec.id}Function`, {
        functionName,
        description: spec.description,
        manifestPath: WORKSPACE_MANIFEST,
        binaryName: binary,
        architecture: lambda.Architecture.ARM_64,
        // Linked against glibc 2.34, provided.al2023's. cargo-lambda's default is older, where
        // threads and dlopen were libraries of their own, so each binary would also load
        // libpthread and libdl (empty stubs since 2.34) at every cold start (docs/benchmarks.md,
        // "Cold start, session 8"). Naming the target replaces cargo-lambda-cdk's `--arm64`.
        bundling: { cargoLambdaFlags: ['--target', 'aarch64-unknown-linux-gnu.2.34'] },
        memorySize: spec.memorySize ?? 256,
        ephemeralStorageSize: spec.ephemeralStorageSize,
        timeout: spec.timeout ?? Duration.seconds(10),
        tracing: lambda.Tracing.ACTIVE,
        logGroup,
        environment: { ...common, ...spec.environment },
      });
      (f.node.defaultChild as lambda.CfnFunction).addMetadata(BINARY_METADATA, binary);
      f.addToRolePolicy(
        new iam.PolicyStatement({
          actions: spec.table.actions,
          resources: spec.table.indexes ? [table.tableArn, `${table.tableArn}/index/*`] : [table.tableArn],
        }),
      );
      this.functions[spec.id] = { fn: f, name: spec.name };
      return f;
    };
    const readSecrets = (f: lambda.Function) =>
      f.addToRolePolicy(new iam.PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: [secretsArn] }));

    // HTTP: the WhatsApp webhook and the CRM API.
    const accessLogs = new logs.LogGroup(this, 'HttpApiAccessLogs', {
      logGroupName: `/cobro/${s.stage}/http-api`,
      retention: s.logRetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const api = new apigw.HttpApi(this, 'CobroHttpApi', { createDefaultStage: false });
    const stage = api.addStage('DefaultStage', {
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: s.apiRateLimit, burstLimit: s.apiBurstLimit },
      accessLogSettings: {
        destination: new apigw.LogGroupLogDestination(accessLogs),
        format: AccessLogFormat.custom(
          '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","method":"$context.httpMethod","path":"$context.path","status":"$context.status","latencyMs":"$context.responseLatency","integrationError":"$context.integrationErrorMessage"}',
        ),
      },
    });
    const route = (f: lambda.Function, routePath: string, methods: apigw.HttpMethod[]) =>
      api.addRoutes({ path: routePath, methods, integration: new HttpLambdaIntegration(`${f.node.id}-${routePath}`, f) });

    // Verify, keep, queue: it reads the number's route and its app secret, and writes only the raw
    // body and the job.
    const webhook = fn({
      id: 'Webhook',
      name: 'webhook',
      description: 'WhatsApp webhook (GET verification, POST signed deliveries)',
      environment: { ...whatsApp, COBRO_INBOUND_QUEUE_URL: inbound.queueUrl, COBRO_BLOB_BUCKET: blobs.bucketName },
      table: { actions: ['dynamodb:GetItem'], indexes: false },
    });
    webhook.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: [blobs.arnForObjects('webhooks/*')] }));
    readSecrets(webhook);
    inbound.grantSendMessages(webhook);
    route(webhook, '/webhooks/whatsapp', [apigw.HttpMethod.GET, apigw.HttpMethod.POST]);

    const crmApi = fn({
      id: 'CrmApi',
      name: 'crm-api',
      description: 'The CRM API (debtors, accounts, payments)',
      // DeleteItem: a webhook unregistered, a handoff released or closed.
      table: { actions: [...rw, 'dynamodb:DeleteItem', 'dynamodb:Query'], indexes: true },
    });
    bus.grantPutEventsTo(crmApi);
    // Agents' replies in handed-off conversations go out through the sender.
    outbound.grantSendMessages(crmApi);
    route(crmApi, '/v1/{proxy+}', [apigw.HttpMethod.ANY]);

    // Payment plans and promises: API Gateway routes these paths here before the catch-all.
    const plans = fn({
      id: 'Plans',
      name: 'plans',
      description: 'Quotes and accepts payment plans, promises to pay and payment links',
      environment: stripe,
      table: { actions: rw, indexes: false },
    });
    bus.grantPutEventsTo(plans);
    for (const p of ['/v1/accounts/{id}/plans/quote', '/v1/accounts/{id}/plans', '/v1/accounts/{id}/promises', '/v1/accounts/{id}/links']) {
      route(plans, p, [apigw.HttpMethod.POST]);
    }

    // The schedule: who is due, and one message per decision. A tick is idempotent.
    const reminders = fn({
      id: 'Reminders',
      name: 'reminders',
      description: 'Decides who is due for contact and queues one message per decision',
      timeout: Duration.seconds(120),
      // DeleteItem: an announcement taken off the outbox once published.
      table: { actions: [...rw, 'dynamodb:DeleteItem', 'dynamodb:Query'], indexes: true },
    });
    outbound.grantSendMessages(reminders);
    bus.grantPutEventsTo(reminders);
    new scheduler.Schedule(this, 'RemindersTick', {
      scheduleName: name('reminders-tick'),
      description: 'The reminders tick',
      schedule: scheduler.ScheduleExpression.expression(s.reminderRate),
      target: new schedulerTargets.LambdaInvoke(reminders, {
        retryAttempts: 2,
        maxEventAge: Duration.seconds(300),
        deadLetterQueue: scheduleDlq,
      }),
    });

    // Outbound: the sender drains its queue at each number's rate.
    const sender = fn({
      id: 'Sender',
      name: 'sender',
      description: 'Delivers each decided message once, on its channel',
      // A batch of 500 at 80/s takes about 6 s; the margin covers slow providers and low rates.
      timeout: Duration.seconds(60),
      environment: {
        ...whatsApp,
        COBRO_CHANNEL: s.channelMode,
        COBRO_OUTBOUND_DLQ_URL: outboundDlq.queueUrl,
        COBRO_SEND_RATE_PER_SECOND: String(s.sendRatePerSecond),
        WHATSAPP_GRAPH_VERSION: s.graphApiVersion,
        COBRO_SMS_ORIGINATION: s.smsOriginationIdentity,
        COBRO_EMAIL_FROM: s.emailFrom,
      },
      table: { actions: [...rw, 'dynamodb:Query'], indexes: false },
    });
    sender.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['sms-voice:SendTextMessage'],
        resources: [this.formatArn({ service: 'sms-voice', resource: '*', arnFormat: ArnFormat.NO_RESOURCE_NAME })],
      }),
    );
    sender.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['ses:SendEmail'],
        resources: [this.formatArn({ service: 'ses', resource: '*', arnFormat: ArnFormat.NO_RESOURCE_NAME })],
      }),
    );
    readSecrets(sender);
    outbound.grantSendMessages(sender);
    outboundDlq.grantSendMessages(sender);
    bus.grantPutEventsTo(sender);
    sender.addEventSource(
      new SqsEventSource(outbound, {
        // 500 per batch keeps a number at >= 0.95 of its rate (docs/benchmarks.md).
        batchSize: 500,
        maxBatchingWindow: Duration.seconds(1),
        reportBatchItemFailures: true,
        // Each instance paces itself; two instances x the rate is the most one number sees.
        maxConcurrency: 2,
      }),
    );

    // Inbound: what the channels send back.
    const inboundFn = fn({
      id: 'Inbound',
      name: 'inbound',
      description: "Applies debtors' messages (the chatbot), delivery statuses and inbound SMS",
      timeout: Duration.seconds(30),
      // The chatbot sends payment links when a debtor asks for one.
      environment: { ...whatsApp, ...stripe, COBRO_BLOB_BUCKET: blobs.bucketName, WHATSAPP_GRAPH_VERSION: s.graphApiVersion },
      table: { actions: [...rw, 'dynamodb:DeleteItem', 'dynamodb:Query'], indexes: true },
    });
    inboundFn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject', 's3:PutObject'],
        resources: ['webhooks/*', 'inbound/*', 'media/*'].map((p) => blobs.arnForObjects(p)),
      }),
    );
    readSecrets(inboundFn);
    bus.grantPutEventsTo(inboundFn);
    outbound.grantSendMessages(inboundFn);
    inboundFn.addEventSource(new SqsEventSource(inbound, { batchSize: 10, reportBatchItemFailures: true }));

    // Payments: applied exactly once. EventBridge invokes asynchronously: the rule's retries and
    // DLQ cover failures to invoke, the on-failure destination a handler that keeps failing.
    const paymentConfirmed = fn({
      id: 'PaymentConfirmed',
      name: 'payment-confirmed',
      description: 'Applies each confirmed payment to its account exactly once',
      table: { actions: rw, indexes: false },
    });
    bus.grantPutEventsTo(paymentConfirmed);
    outbound.grantSendMessages(paymentConfirmed);
    paymentConfirmed.configureAsyncInvoke({ retryAttempts: 2, onFailure: new SqsDestination(paymentsDlq) });
    const paymentTarget = new eventsTargets.LambdaFunction(paymentConfirmed, {
      retryAttempts: 10,
      maxEventAge: Duration.hours(24),
      deadLetterQueue: paymentsDlq,
    });
    new events.Rule(this, 'PaymentConfirmedRule', {
      eventBus: bus,
      // cobro's own events, and those of payment integrations publishing under "cobro.".
      eventPattern: { source: events.Match.anyOf('cobro', events.Match.prefix('cobro.')), detailType: ['PaymentConfirmed'] },
      targets: [paymentTarget],
    });
    if (s.stripeEventBusName) {
      // Stripe's events arrive on its own partner bus, so the rule lives there.
      new events.Rule(this, 'StripePaymentsRule', {
        eventBus: events.EventBus.fromEventBusName(this, 'StripeBus', s.stripeEventBusName),
        eventPattern: {
          source: events.Match.prefix('aws.partner/stripe.com'),
          detailType: ['checkout.session.completed', 'checkout.session.async_payment_succeeded', 'payment_intent.succeeded'],
        },
        targets: [paymentTarget],
      });
    }

    // --- Exports: finance files (docs/exports.md) ------------------------------------------------
    // The CRM API records a job and publishes ExportRequested; a rule puts it on the export queue;
    // the function streams the file into the exports bucket; a daily schedule queues yesterday's.
    const exportDlq = deadLetterQueue('ExportDeadLetterQueue', 'export');
    const exportQueue = new sqs.Queue(this, 'ExportQueue', {
      queueName: name('export'),
      // Longer than the function's timeout; a job whose worker died is taken over after its lease.
      visibilityTimeout: Duration.seconds(1020),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      deadLetterQueue: { queue: exportDlq, maxReceiveCount: 5 },
    });
    const exportBucket = new s3.Bucket(this, 'ExportBucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      removalPolicy: RemovalPolicy.DESTROY,
      lifecycleRules: [
        { id: 'exports', prefix: 'exports/', expiration: Duration.days(30), abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
    });
    const exporter = fn({
      id: 'Export',
      name: 'export',
      description: "Streams a tenant's ledger, accounts, aging, plans or contact log into one file",
      timeout: Duration.seconds(900),
      memorySize: 512,
      ephemeralStorageSize: Size.mebibytes(4096),
      environment: { COBRO_EXPORT_BUCKET: exportBucket.bucketName, COBRO_EXPORT_QUEUE_URL: exportQueue.queueUrl },
      table: { actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query'], indexes: false },
    });
    exporter.addToRolePolicy(new iam.PolicyStatement({ actions: ['dynamodb:Query'], resources: [`${table.tableArn}/index/gsi1`] }));
    exporter.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['s3:PutObject', 's3:AbortMultipartUpload'], resources: [exportBucket.arnForObjects('exports/*')] }),
    );
    exportQueue.grantSendMessages(exporter);
    exporter.addEventSource(new SqsEventSource(exportQueue, { batchSize: 1, reportBatchItemFailures: true, maxConcurrency: 2 }));
    new events.Rule(this, 'ExportRequestedRule', {
      eventBus: bus,
      eventPattern: { source: ['cobro'], detailType: ['ExportRequested'] },
      targets: [new eventsTargets.SqsQueue(exportQueue, { retryAttempts: 10, maxEventAge: Duration.hours(24), deadLetterQueue: exportDlq })],
    });
    // The CRM API presigns download links with its own right to read the files.
    crmApi.addEnvironment('COBRO_EXPORT_BUCKET', exportBucket.bucketName);
    crmApi.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [exportBucket.arnForObjects('exports/*')] }));
    // Listing lets S3 answer a missing file's HEAD with 404 (an expired export) rather than 403.
    crmApi.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [exportBucket.bucketArn] }));
    new scheduler.Schedule(this, 'DailyExportSchedule', {
      scheduleName: name('daily-exports'),
      description: "Yesterday's payments ledger, contact log and aging report of every tenant",
      // 07:00 UTC: past midnight in every market's zone.
      schedule: scheduler.ScheduleExpression.cron({ minute: '0', hour: '7', timeZone: TimeZone.ETC_UTC }),
      target: new schedulerTargets.SqsSendMessage(exportQueue, {
        input: scheduler.ScheduleTargetInput.fromText('{"daily": {}}'),
        retryAttempts: 10,
        maxEventAge: Duration.seconds(3600),
        deadLetterQueue: exportDlq,
      }),
    });

    // --- Events out: tenants' webhooks (docs/events.md) -----------------------------------------
    // Every published event goes to the events-out queue; the function posts it, signed, to the
    // tenant's webhook, retries with wake-ups on its own queue, and keeps what failed every attempt.
    const eventsOutDlq = deadLetterQueue('EventsOutDeadLetterQueue', 'events-out');
    const eventsOutQueue = new sqs.Queue(this, 'EventsOutQueue', {
      queueName: name('events-out'),
      // Six times the function's timeout, as AWS advises for Lambda consumers.
      visibilityTimeout: Duration.seconds(180),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      deadLetterQueue: { queue: eventsOutDlq, maxReceiveCount: 5 },
    });
    const eventsOut = fn({
      id: 'EventsOut',
      name: 'events-out',
      description: "Posts cobro's events to tenants' webhooks, signed and retried",
      timeout: Duration.seconds(30),
      environment: { COBRO_EVENTS_OUT_QUEUE_URL: eventsOutQueue.queueUrl },
      table: { actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'], indexes: false },
    });
    eventsOutQueue.grantSendMessages(eventsOut);
    eventsOut.addEventSource(new SqsEventSource(eventsOutQueue, { batchSize: 10, reportBatchItemFailures: true }));
    new events.Rule(this, 'EventsOutRule', {
      eventBus: bus,
      // cobro::events::published(), as in template.yaml.
      eventPattern: {
        source: ['cobro'],
        detailType: ['PaymentApplied', 'AccountSettled', 'PlanAccepted', 'PlanCompleted', 'PlanBroken', 'PromiseMade', 'PromiseKept', 'PromiseBroken', 'OptedOut', 'ConsentGiven', 'DisputeOpened', 'VulnerabilityFlagged', 'HandoffRequested', 'HandoffReleased', 'HandoffClosed', 'IdentityCheckLocked', 'CollectionPaused', 'PreferencesChanged', 'ReceiptReceived', 'MediaReceived', 'DebtorPreferenceChanged', 'DebtorNumberChanged', 'MessageSent', 'MessageDelivered', 'MessageRead', 'MessageFailed', 'ChannelStopped', 'ProviderErrorReported'],
      },
      targets: [new eventsTargets.SqsQueue(eventsOutQueue, { retryAttempts: 10, maxEventAge: Duration.hours(24), deadLetterQueue: eventsOutDlq })],
    });
    // A failed delivery sent again from the API is woken up on the queue.
    crmApi.addEnvironment('COBRO_EVENTS_OUT_QUEUE_URL', eventsOutQueue.queueUrl);
    eventsOutQueue.grantSendMessages(crmApi);

    // --- Alarms ---------------------------------------------------------------------------------
    // The sender publishes ChannelStopped when a channel refuses a tenant's messages account-wide.
    const channelStopped = new events.Rule(this, 'ChannelStoppedRule', {
      ruleName: name('channel-stopped'),
      eventBus: bus,
      eventPattern: { source: ['cobro'], detailType: ['ChannelStopped'] },
    });
    channelStopped.addTarget(
      new TopicFromRule(alarmTopic, alertDlq, {
        message: events.RuleTargetInput.fromText(
          `cobro ${s.stage}: ${events.EventField.fromPath('$.detail.channel')} stopped for tenant ${events.EventField.fromPath('$.detail.tenant')} (code ${events.EventField.fromPath('$.detail.code')}): ${events.EventField.fromPath('$.detail.reason')}. Messages wait until an operator resumes the channel: cobro-admin channel resume (docs/operations.md).`,
        ),
        retryAttempts: 10,
        maxEventAge: Duration.hours(24),
      }),
    );

    const notify = new cwActions.SnsAction(alarmTopic);
    const alarm = (
      id: string,
      alarmSuffix: string,
      description: string,
      metric: cloudwatch.Metric,
      threshold: number,
      options: { evaluationPeriods?: number; ok?: boolean } = {},
    ) => {
      const a = new cloudwatch.Alarm(this, id, {
        alarmName: name(alarmSuffix),
        alarmDescription: description,
        metric,
        threshold,
        evaluationPeriods: options.evaluationPeriods ?? 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      a.addAlarmAction(notify);
      if (options.ok) a.addOkAction(notify);
    };
    const fiveMinutes = Duration.minutes(5);
    alarm(
      'AccountStopAlarm',
      'account-stop',
      "WhatsApp stopped a tenant's messages account-wide (see the ChannelStopped e-mail)",
      new cloudwatch.Metric({ namespace: 'Cobro', metricName: 'AccountStop', dimensionsMap: { Function: 'sender' }, statistic: 'Maximum', period: fiveMinutes }),
      1,
    );
    // The same metric from inbound: a failed status webhook with an account-wide code stops the channel there too.
    alarm(
      'InboundAccountStopAlarm',
      'inbound-account-stop',
      'A status webhook reported an account-wide WhatsApp failure and the channel was stopped (see the ChannelStopped e-mail)',
      new cloudwatch.Metric({ namespace: 'Cobro', metricName: 'AccountStop', dimensionsMap: { Function: 'inbound' }, statistic: 'Maximum', period: fiveMinutes }),
      1,
    );
    // A tenant's WhatsApp template refused by Meta for a fault of its own: messages go on the next channel meanwhile.
    alarm(
      'TemplateRefusedAlarm',
      'template-refused',
      "WhatsApp refused a tenant's template (the sender log names the tenant, template, language and code); messages went on the next channel",
      new cloudwatch.Metric({ namespace: 'Cobro', metricName: 'TemplateRefused', dimensionsMap: { Function: 'sender' }, statistic: 'Maximum', period: fiveMinutes }),
      1,
    );
    const deadLetters: [string, sqs.Queue, string][] = [
      ['ScheduleDeadLetterAlarm', scheduleDlq, 'A reminders tick failed after its retries'],
      ['OutboundDeadLetterAlarm', outboundDlq, 'Messages the sender could not send or read'],
      ['InboundDeadLetterAlarm', inboundDlq, 'Webhook deliveries or inbound SMS that could not be applied'],
      ['PaymentsDeadLetterAlarm', paymentsDlq, 'Confirmed payments not applied to their accounts'],
      ['AlertDeadLetterAlarm', alertDlq, 'ChannelStopped events that could not be published to the alarm topic'],
      ['ExportDeadLetterAlarm', exportDlq, 'Export jobs that failed every retry'],
      ['EventsOutDeadLetterAlarm', eventsOutDlq, 'Events that could not be put on the events-out queue or handled there'],
    ];
    for (const [id, queue, description] of deadLetters) {
      const suffix = queue.node.id.replace('DeadLetterQueue', '').replace(/([a-z])([A-Z])/g, '$1-$2').toLowerCase();
      alarm(id, `${suffix}-dlq`, description, queue.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: fiveMinutes }), 1, { ok: true });
    }
    alarm(
      'OutboundBacklogAlarm',
      'outbound-backlog',
      'The oldest outbound message has waited over 30 minutes',
      outbound.metricApproximateAgeOfOldestMessage({ statistic: 'Maximum', period: fiveMinutes }),
      1800,
      { evaluationPeriods: 2, ok: true },
    );
    alarm(
      'ApiServerErrorsAlarm',
      'api-5xx',
      'The HTTP API answered 5xx (Meta retries webhook deliveries it gets 5xx for)',
      api.metricServerError({ statistic: 'Sum', period: fiveMinutes }),
      5,
    );
    for (const [id, { fn: f, name: short }] of Object.entries(this.functions)) {
      alarm(`${id}ErrorsAlarm`, `${short}-errors`, `${short}: failed invocations`, f.metricErrors({ statistic: 'Sum', period: fiveMinutes }), 1);
      alarm(`${id}ThrottlesAlarm`, `${short}-throttles`, `${short}: throttled invocations`, f.metricThrottles({ statistic: 'Sum', period: fiveMinutes }), 1);
    }

    // --- Outputs --------------------------------------------------------------------------------
    new CfnOutput(this, 'ApiUrl', { description: 'Base URL of the webhook (/webhooks/whatsapp) and the CRM API (/v1/)', value: stage.url });
    new CfnOutput(this, 'TableName', { value: table.tableName });
    new CfnOutput(this, 'OutboundQueueUrl', { value: outbound.queueUrl });
    new CfnOutput(this, 'InboundSmsTopicArn', { description: "Set it as the SMS number's two-way channel destination", value: inboundSms.topicArn });
    new CfnOutput(this, 'BlobBucketName', { value: blobs.bucketName });
    new CfnOutput(this, 'EventBusName', { value: bus.eventBusName });
    new CfnOutput(this, 'WhatsAppSecretArn', { description: 'Put the access token and the app secret here; read the verify token from it', value: whatsAppSecret.secretArn });
    new CfnOutput(this, 'AlarmTopicArn', { description: 'Every alarm and ChannelStopped event; subscribe more endpoints here', value: alarmTopic.topicArn });
  }
}

/**
 * An SNS topic as a rule's target, allowed to receive from that rule only (aws-events-targets'
 * SnsTopic lets every EventBridge rule publish), with retries and a dead-letter queue that also
 * accepts from that rule only.
 */
class TopicFromRule implements events.IRuleTarget {
  constructor(
    private readonly topic: sns.Topic,
    private readonly deadLetters: sqs.Queue,
    private readonly props: { message: events.RuleTargetInput; retryAttempts: number; maxEventAge: Duration },
  ) {}

  bind(rule: events.IRule): events.RuleTargetConfig {
    const fromRule = { ArnEquals: { 'aws:SourceArn': rule.ruleArn } };
    const events_ = new iam.ServicePrincipal('events.amazonaws.com');
    this.topic.addToResourcePolicy(
      new iam.PolicyStatement({ principals: [events_], actions: ['sns:Publish'], resources: [this.topic.topicArn], conditions: fromRule }),
    );
    this.deadLetters.addToResourcePolicy(
      new iam.PolicyStatement({ principals: [events_], actions: ['sqs:SendMessage'], resources: [this.deadLetters.queueArn], conditions: fromRule }),
    );
    return {
      arn: this.topic.topicArn,
      input: this.props.message,
      retryPolicy: { maximumRetryAttempts: this.props.retryAttempts, maximumEventAgeInSeconds: this.props.maxEventAge.toSeconds() },
      deadLetterConfig: { arn: this.deadLetters.queueArn },
    };
  }
}
