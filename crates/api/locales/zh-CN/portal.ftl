# numlink 面向个人的页面（简体中文）。此处每条消息都在 en/portal.ftl 中有对应（否则测试失败）。

site-name = numlink
site-tagline = 让二次放号更安全
lang-switch-label = 语言
skip-to-content = 跳到正文
footer-note = numlink 对每次查询和每个请求都留有防篡改记录。

verify-title = 核验号码持有证明
verify-intro = 号码持有证明说明谁自何时起持有某个手机号码。请将证明粘贴到下方，或打开其二维码中的链接。numlink 会用自己公布的密钥进行核验。
verify-label = 号码持有证明
verify-hint = 以“eyJ”开头的一长串字符。
verify-submit = 核验
verify-valid = 有效
verify-valid-detail = 此证明由 numlink 签发，且未被篡改。
verify-invalid = 无效
verify-claim-number = 手机号码
verify-claim-held-since = 最晚持有起始日
verify-claim-expires = 有效期至
verify-claim-issuer = 签发方
verify-next-valid = 在有效期内，您可以依据其所示号码和日期办理业务。
verify-next-invalid = 请勿依据此证明办理。请持有人在手机上打开 numlink，出示新的证明。
verify-why-malformed = 这不是号码持有证明：其中部分内容缺失或被改动。
verify-why-unknown-key = 它并非由 numlink 公布的密钥签发。
verify-why-bad-signature = 它的内容在 numlink 签发后被改动过。
verify-why-expired = 它已过期。证明的有效期为几天，持有人可以出示新的证明。
verify-why-wrong-issuer = 它由其他平台签发。

moment-zoned = { $date } { $time }（{ $zone }）

## 号码持有人门户

nav-label = 您的号码
nav-signed-in-as = 当前号码
nav-institutions = 机构
nav-requests = 解绑申请
nav-proof = 持有证明
nav-lookups = 查询记录
nav-sign-out = 退出

start-title = 您的新号码是否仍绑定着别人的账户？
start-intro = 如果您的手机号以前属于别人，银行和应用可能仍会给您发送他们的短信和验证码。在这里，您可以查看哪些机构的账户在您取得号码之前绑定了它，并在线请求它们解绑。
start-step-code = 我们通过短信向您的号码发送验证码，证明号码归您所有。
start-step-list = 您会看到在您取得号码之前绑定了它的机构。
start-step-unbind = 您可以请求其中一个、几个或全部机构解绑；每个机构须在规定的工作日内答复。
start-step-proof = 您会得到一份经签名的号码持有证明，银行柜员可以当场核验。
start-number-label = 您的手机号码
start-number-hint = 请带国家代码，例如 +86 138 0013 8000。
start-submit = 发送验证码
start-privacy = numlink 不会向任何人透露号码曾绑定在谁的账户上。无论号码是否有人持有，页面的回答都相同。
start-clerk-link = 银行工作人员？核验号码持有证明
number-missing = 请输入您的手机号码。
number-invalid = numlink 无法识别这个号码。请带国家代码输入，例如 +86 138 0013 8000。
signed-out-notice = 您已退出。本浏览器中不再保留您的会话。

code-title = 输入验证码
code-sent = 如果 { $number } 正在使用，6 位验证码已通过短信发出，{ $minutes } 分钟内有效。
code-label = 6 位验证码
code-hint = 请勿把验证码告诉任何人：numlink、银行和运营商都不会向您索要验证码。
code-submit = 继续
code-none-title = 没收到验证码？
code-none-body = 短信可能需要一分钟。请确认号码无误；稍后可以再次获取验证码。
code-resend = 重新发送验证码
code-resend-countdown = { $seconds } 秒后可重新获取验证码。
code-other-number = 换一个号码
code-wrong = 验证码不正确。这个验证码还可以再试 { $left } 次。
code-malformed = 请输入短信中的 6 位数字。
code-wait = 刚刚已发送过验证码。请在 { $seconds } 秒后再获取。

institutions-title = 在您之前绑定此号码的机构
institutions-intro = 这些机构的账户在号码归您之前绑定了它。您不会看到这些账户属于谁。请选择要请求解绑的机构。
institutions-legend = 选择机构
institution-bindings = { $count } 个账户
deadline-label = 答复期限
ask-selected = 向所选机构申请解绑
ask-all = 向全部机构申请解绑
all-asked = 您已向列表中的所有机构提出申请。
choose-one = 请至少选择一个机构，或向全部机构申请。
nothing-to-unbind-title = 没有需要解绑的绑定
nothing-to-unbind-body = numlink 中没有任何机构在号码归您之前把它绑定在账户上。
nothing-to-unbind-next = 如果您仍收到别人的短信，发送方是未接入 numlink 的机构：请直接联系该机构，并出示您的号码持有证明。

state-open = 已申请，等待答复
state-overdue = 已逾期：期限内未答复
state-unbound = 已解绑
state-rejected = 已拒绝

reason-customer-reverified = 账户持有人在您取得号码之后又向该机构确认了这个号码。如果那不是您本人，请联系该机构。
reason-legal-hold = 法院命令或监管规定要求该机构暂时保留绑定。
reason-fraud-investigation = 该账户正在接受反欺诈调查，调查结束前机构会保留绑定。
reason-no-such-binding = 该机构的任何账户都已不再绑定您的号码。

confirm-title = 确认申请解绑？
confirm-intro = numlink 将请求以下 { $count } 个机构，把您的号码从在您取得号码之前绑定它的账户上解除：
confirm-what-they-get = 每个机构会收到您的申请和号码持有证明：您的号码以及您从何时起持有它，不含您的其他信息。
confirm-deadline = 每个机构须在 { $deadline }前答复。
confirm-yes = 确认申请
confirm-back = 返回

requests-title = 您的解绑申请
requests-none = 您还没有向任何机构提出申请。
requests-intro = 每个机构都须在期限内答复。numlink 会向监管机构显示哪些机构答复逾期。
requests-asked = 申请时间
requests-answered = 答复时间
requests-reason = 原因
requests-overdue-help = 申请逾期时，监管机构会看到。您无需再做什么，也可以直接联系该机构。
asked-notice = 您的申请已发送给 { $count } 个机构。

proof-title = 您的号码持有证明
proof-intro = 这份证明由 numlink 签名。您可以在银行柜台出示，或发送给机构：任何人都可以在 numlink 上核验。
proof-qr-title = 出示二维码
proof-qr-help = 银行柜员用手机相机扫描后，numlink 的核验页面会显示证明是否有效。
proof-qr-label = 核验此证明的链接的二维码
proof-text-title = 或复制文本
proof-text-label = 证明文本
proof-copy = 复制
proof-copied = 已复制。
proof-download = 下载
proof-verify-link = 在 numlink 核验页面核验此证明

lookups-title = 谁查询过您的号码
lookups-intro = 最近 { $days } 天内向 numlink 查询过您号码的机构（不含号码归您之前的查询）。
lookups-none = 自号码归您以来，没有机构查询过它。
lookups-who = 机构
lookups-when = 时间
lookups-kind = 查询内容
lookup-check = 号码是否已易主
lookup-kyc-match = 姓名是否与号码持有人一致

what-next = 您可以这样做
action-new-code = 重新发送验证码
action-institutions = 返回机构列表
action-try-again = 重试
action-start = 重新开始

client-limited-title = 此网络连接获取验证码过于频繁
client-limited-body = 同一网络连接每小时最多可向任意号码发送 { $per_hour } 条验证码。
client-limited-next = 请在 { $when } 之后再试。
sends-limited-title = 此号码的验证码发送过于频繁
sends-limited-body = 为保护号码，同一网络连接每小时最多向它发送 { $per_hour } 条、每天最多 { $per_day } 条验证码。
sends-limited-next = 请使用最近收到的验证码，或在 { $when } 之后再试。
number-ceiling-title = 此号码今天的验证码已达上限
number-ceiling-body = 此号码今天收到的验证码已达 numlink 每日上限（{ $per_day } 条）。
number-ceiling-next = 请在 { $when } 之后再试。如果这些验证码不是您申请的，可能有人在尝试您的号码：您无需做任何事。
locked-title = 此号码暂时被锁定
locked-body = 此号码连续输错验证码的次数过多，numlink 已暂停接受它的验证码。
locked-next = 请在 { $when } 之后再试。
not-covered-title = numlink 不覆盖这个号码
not-covered-body = numlink 中没有运营商服务这类号码，因此无法向它发送验证码。
not-covered-next = 请检查国家代码和号码。如果无误，请询问您的运营商是否已接入 numlink。
out-of-tries-title = 验证码尝试次数过多
out-of-tries-body = 这个验证码输错次数过多，已经失效。
out-of-tries-next = 请重新获取验证码，并仔细输入。
code-expired-title = 验证码已过期
code-expired-body = 验证码 { $minutes } 分钟内有效，且只能使用一次。
code-expired-next = 请重新获取验证码。
code-stale-title = 号码已易主
code-stale-body = 发送这个验证码之后，号码已经易主，因此它现在不能证明任何事。
code-stale-next = 如果号码现在归您所有，请重新获取验证码。
session-ended-title = 您的会话已结束
session-ended-body = 为了您的安全，会话在 { $minutes } 分钟后或您退出时结束。
session-ended-next = 请用新的验证码重新登录。
hands-changed-title = 号码已易主
hands-changed-body = 您登录之后，运营商报告此号码已易主，因此您的会话已结束。
hands-changed-next = 如果号码现在归您所有，请用新的验证码重新登录。
nobody-holds-title = 此号码目前无人持有
nobody-holds-body = 运营商报告此号码已停止服务，因此无法证明持有。
nobody-holds-next = 如果您正在使用这个号码，请联系您的运营商核实记录。
already-changed-title = 列表已有变化
already-changed-body = 您选择的机构都已没有可申请解绑的绑定，可能刚刚已经解除。
already-changed-next = 请返回列表查看最新情况。
bad-form-title = 表单内容有误
bad-form-body = numlink 无法读取提交的内容。
bad-form-next = 请返回重试。
unavailable-title = numlink 暂时无法响应
unavailable-body = 这不是您的操作造成的，也没有任何数据丢失。
unavailable-next = 请一分钟后再试。
csrf-title = 无法接受此表单
csrf-body = numlink 无法确认表单来自它自己的页面。浏览器未为 numlink 保存 Cookie，或表单来自其他网站时，会出现这种情况。
csrf-next = 请允许本网站使用 Cookie，然后从 numlink 的页面重新开始。
