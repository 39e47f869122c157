package report

// TestReport exposes the shared test report to the external test package.
var TestReport = testReport
