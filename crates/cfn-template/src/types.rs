//! The resource types Kindling's engine provisions: their `Fn::GetAtt` attributes and which
//! property changes force a replacement (CloudFormation's "Update requires: Replacement").
//!
//! `Ref` of each type (what the engine's resolver returns) is noted per entry.

/// What CloudFormation knows about one resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceTypeSpec {
    pub name: &'static str,
    /// What `Ref` returns (documentation for the engine's resolver).
    pub ref_returns: &'static str,
    /// Attributes `Fn::GetAtt` accepts.
    pub attributes: &'static [&'static str],
    /// Properties whose change replaces the resource (RequiresRecreation `Always`).
    pub replace_on_change: &'static [&'static str],
    /// Properties whose change may replace it, depending on the new value (`Conditionally`).
    pub conditional_replace: &'static [&'static str],
}

/// How a property change updates a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequiresRecreation {
    Never,
    Conditionally,
    Always,
}

impl RequiresRecreation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Never => "Never",
            Self::Conditionally => "Conditionally",
            Self::Always => "Always",
        }
    }
}

impl ResourceTypeSpec {
    pub fn requires_recreation(&self, property: &str) -> RequiresRecreation {
        if self.replace_on_change.contains(&property) {
            RequiresRecreation::Always
        } else if self.conditional_replace.contains(&property) {
            RequiresRecreation::Conditionally
        } else {
            RequiresRecreation::Never
        }
    }

    pub fn has_attribute(&self, attribute: &str) -> bool {
        self.attributes.contains(&attribute)
    }
}

const fn spec(
    name: &'static str,
    ref_returns: &'static str,
    attributes: &'static [&'static str],
    replace_on_change: &'static [&'static str],
) -> ResourceTypeSpec {
    ResourceTypeSpec {
        name,
        ref_returns,
        attributes,
        replace_on_change,
        conditional_replace: &[],
    }
}

/// Every resource type the engine supports.
pub const RESOURCE_TYPES: &[ResourceTypeSpec] = &[
    spec(
        "AWS::Lambda::Function",
        "function name",
        &[
            "Arn",
            "SnapStartResponse",
            "SnapStartResponse.ApplyOn",
            "SnapStartResponse.OptimizationStatus",
        ],
        &["FunctionName", "PackageType"],
    ),
    spec(
        "AWS::Lambda::Version",
        "version ARN (qualified)",
        &["Version", "FunctionArn"],
        &["FunctionName", "CodeSha256", "Description", "RuntimePolicy"],
    ),
    spec(
        "AWS::Lambda::Alias",
        "alias ARN",
        &["AliasArn"],
        &["FunctionName", "Name"],
    ),
    spec(
        "AWS::Lambda::Url",
        "function ARN",
        &["FunctionArn", "FunctionUrl"],
        &["TargetFunctionArn", "Qualifier"],
    ),
    spec(
        "AWS::Lambda::Permission",
        "statement id",
        &[],
        &[
            "Action",
            "EventSourceToken",
            "FunctionName",
            "FunctionUrlAuthType",
            "InvokedViaFunctionUrl",
            "Principal",
            "PrincipalOrgID",
            "SourceAccount",
            "SourceArn",
        ],
    ),
    spec(
        "AWS::Lambda::EventSourceMapping",
        "mapping UUID",
        &["Id", "EventSourceMappingArn"],
        &[
            "EventSourceArn",
            "StartingPosition",
            "StartingPositionTimestamp",
            "SelfManagedEventSource",
        ],
    ),
    spec(
        "AWS::Lambda::LayerVersion",
        "layer version ARN",
        &["LayerVersionArn"],
        &[
            "CompatibleArchitectures",
            "CompatibleRuntimes",
            "Content",
            "Description",
            "LayerName",
            "LicenseInfo",
        ],
    ),
    spec(
        "AWS::Lambda::LayerVersionPermission",
        "layer version ARN",
        &[],
        &["Action", "LayerVersionArn", "OrganizationId", "Principal"],
    ),
    spec(
        "AWS::Lambda::EventInvokeConfig",
        "generated id",
        &[],
        &["FunctionName", "Qualifier"],
    ),
    spec(
        "AWS::SQS::Queue",
        "queue URL",
        &["Arn", "QueueName", "QueueUrl"],
        &["FifoQueue", "QueueName"],
    ),
    spec("AWS::SQS::QueuePolicy", "generated id", &["Id"], &[]),
    spec(
        "AWS::SNS::Topic",
        "topic ARN",
        &["TopicArn", "TopicName"],
        &["FifoTopic", "TopicName"],
    ),
    spec(
        "AWS::SNS::Subscription",
        "subscription ARN",
        &["Arn"],
        &["Endpoint", "Protocol", "TopicArn"],
    ),
    spec("AWS::SNS::TopicPolicy", "generated id", &["Id"], &[]),
    spec(
        "AWS::ApiGateway::RestApi",
        "REST API id",
        &["RestApiId", "RootResourceId"],
        &[],
    ),
    spec(
        "AWS::ApiGateway::Deployment",
        "deployment id",
        &["DeploymentId"],
        &["DeploymentCanarySettings", "RestApiId"],
    ),
    spec(
        "AWS::ApiGateway::Stage",
        "stage name",
        &[],
        &["RestApiId", "StageName"],
    ),
    spec(
        "AWS::ApiGateway::Resource",
        "resource id",
        &["ResourceId"],
        &["ParentId", "RestApiId"],
    ),
    spec(
        "AWS::ApiGateway::Method",
        "method id",
        &[],
        &["ResourceId", "RestApiId"],
    ),
    spec(
        "AWS::ApiGatewayV2::Api",
        "API id",
        &["ApiEndpoint", "ApiId"],
        &["ProtocolType"],
    ),
    spec(
        "AWS::ApiGatewayV2::Stage",
        "stage name",
        &[],
        &["ApiId", "StageName"],
    ),
    spec(
        "AWS::ApiGatewayV2::Route",
        "route id",
        &["RouteId"],
        &["ApiId"],
    ),
    spec(
        "AWS::ApiGatewayV2::Integration",
        "integration id",
        &["IntegrationId"],
        &["ApiId"],
    ),
    spec(
        "AWS::ApiGatewayV2::Deployment",
        "deployment id",
        &["DeploymentId"],
        &["ApiId"],
    ),
    spec(
        "AWS::S3::Bucket",
        "bucket name",
        &[
            "Arn",
            "DomainName",
            "DualStackDomainName",
            "RegionalDomainName",
            "WebsiteURL",
        ],
        &["BucketName", "ObjectLockEnabled"],
    ),
    spec("AWS::S3::BucketPolicy", "bucket name", &[], &["Bucket"]),
    spec(
        "AWS::IAM::Role",
        "role name",
        &["Arn", "RoleId"],
        &["Path", "RoleName"],
    ),
    spec("AWS::IAM::Policy", "generated id", &["Id"], &[]),
    spec(
        "AWS::IAM::ManagedPolicy",
        "policy ARN",
        &[
            "PolicyArn",
            "PolicyId",
            "DefaultVersionId",
            "AttachmentCount",
            "CreateDate",
            "UpdateDate",
            "IsAttachable",
            "PermissionsBoundaryUsageCount",
        ],
        &["Description", "ManagedPolicyName", "Path"],
    ),
    spec(
        "AWS::Events::Rule",
        "rule name",
        &["Arn"],
        &["EventBusName", "Name"],
    ),
    spec(
        "AWS::Events::EventBus",
        "bus name",
        &["Arn", "Name", "Policy"],
        &["EventSourceName", "Name"],
    ),
    spec(
        "AWS::Scheduler::Schedule",
        "schedule name",
        &["Arn"],
        &["Name"],
    ),
    spec(
        "AWS::Scheduler::ScheduleGroup",
        "group name",
        &["Arn", "CreationDate", "LastModificationDate", "State"],
        &["Name"],
    ),
    spec(
        "AWS::Logs::LogGroup",
        "log group name",
        &["Arn"],
        &["LogGroupClass", "LogGroupName"],
    ),
    spec(
        "AWS::CodeDeploy::Application",
        "application name",
        &[],
        &["ApplicationName", "ComputePlatform"],
    ),
    spec(
        "AWS::CodeDeploy::DeploymentGroup",
        "deployment group name",
        &[],
        &["ApplicationName", "DeploymentGroupName"],
    ),
    spec(
        "AWS::CloudFormation::WaitConditionHandle",
        "signal URL",
        &[],
        &[],
    ),
];

/// The spec of a supported resource type.
pub fn resource_type(name: &str) -> Option<&'static ResourceTypeSpec> {
    RESOURCE_TYPES.iter().find(|spec| spec.name == name)
}

/// Whether the engine can provision this type.
pub fn is_supported(name: &str) -> bool {
    resource_type(name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacement_rules() {
        let queue = resource_type("AWS::SQS::Queue").expect("queue");
        assert_eq!(
            queue.requires_recreation("QueueName"),
            RequiresRecreation::Always
        );
        assert_eq!(
            queue.requires_recreation("VisibilityTimeout"),
            RequiresRecreation::Never
        );
        assert!(queue.has_attribute("Arn"));
        assert!(!queue.has_attribute("Bogus"));
        assert!(!is_supported("AWS::EC2::Instance"));
    }

    #[test]
    fn names_are_unique() {
        for (i, a) in RESOURCE_TYPES.iter().enumerate() {
            assert!(
                RESOURCE_TYPES[i + 1..].iter().all(|b| b.name != a.name),
                "{}",
                a.name
            );
        }
    }
}
