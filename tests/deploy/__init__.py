"""What gets deployed: the CloudFormation template, the per-function policies, the security scans,
the Lambda package (contents, budget) and what a cold start imports."""
