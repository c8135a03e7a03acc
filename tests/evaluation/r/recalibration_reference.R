# Reference values for tests/evaluation/test_external_recalibration.py (nodescope). Run from this folder:
#   Rscript recalibration_reference.R > recalibration_reference.out 2>&1
# Logistic recalibration of the probabilities p of ../reference/data_binary.csv (60 cases) with base R glm:
#   intercept only:   glm(y ~ offset(qlogis(p)), binomial)  ->  logit p' = a + logit p
#   intercept + slope: glm(y ~ qlogis(p), binomial)          ->  logit p' = a' + b logit p
# Wald intervals (confint.default), as statsmodels' GLM gives them. No extra package is needed.
options(digits = 15)
cat("R:", R.version.string, "\n")
a <- read.csv("../reference/data_binary.csv")
L <- qlogis(a$p)
f1 <- glm(a$y ~ offset(L), family = binomial)
f2 <- glm(a$y ~ L, family = binomial)
cat("\n## intercept only\n")
cat("a =", coef(f1)[1], " se =", sqrt(vcov(f1)[1, 1]), " wald95 =", confint.default(f1)[1, ], "\n")
cat("\n## intercept + slope\n")
cat("a' =", coef(f2)[1], " b =", coef(f2)[2], " se(b) =", sqrt(vcov(f2)[2, 2]),
    " wald95(b) =", confint.default(f2)[2, ], "\n")
newp <- c(0.05, 0.3, 0.5, 0.9)
cat("\n## recalibrated probabilities at p =", newp, "\n")
cat("intercept only:", plogis(coef(f1)[1] + qlogis(newp)), "\n")
cat("intercept + slope:", plogis(coef(f2)[1] + coef(f2)[2] * qlogis(newp)), "\n")
